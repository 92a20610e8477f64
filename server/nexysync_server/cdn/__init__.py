"""The CDN: a Falcon ASGI app of its own that stores and serves encrypted file content on a volume.

The API announces files and signs URLs; the CDN checks the signatures, streams uploads to disk
and downloads (with ``Range``) from it, and sweeps expired content. Both share the MongoDB
store, and in ``nexysync-server dev`` the same volume.
"""
