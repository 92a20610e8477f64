"""The ``nexysync`` command: provisioning (accounts, projects, agents, key files, editor configs) and the hooks.

It owns what a person (or an AI tool's hook) runs in a terminal: :mod:`.main` is the provisioning
CLI, :mod:`.hooks` the ``nexysync hook ...`` commands that AI tools without channels run on every
prompt and stop, and :mod:`.entry` the command's entry point, which starts a hook without
loading the CLI. It is built on the SDK (``nexysync``) and shares nothing with the MCP server
(``nexysync_mcp``) but that.
"""

__version__ = "0.1.0"
