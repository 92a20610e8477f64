"""The generator: ``nexysync_generated`` and the SDK's generated modules, from ``openapi.yaml``.

Run ``python scripts/generate.py [--out DIR] [--sdk-types FILE] [--sdk-resources DIR]`` (or
``python -m nexysync_codegen`` from ``scripts/``). It writes, into the package directory:

- ``models.py``: pydantic v2 models made by datamodel-code-generator (pinned version; :mod:`.models`);
- ``operations.py``: the operation table, one entry per operationId, as plain data (:mod:`.operations`);
- ``encryption.py``: the encryption plan of every operation that encrypts or decrypts (:mod:`.encryption`);
- ``_types.py``: the frozen dataclasses the table and the plan are made of, and ``__init__.py``;
- ``py.typed``;
- ``openapi.yaml`` (a byte-for-byte copy of the contract) and ``openapi.json`` (the same document
  as JSON, so the package can load it without a YAML parser);

and, into the SDK (which depends on the package, so they cannot live in it):

- ``sdk/nexysync/types.py``: the plaintext models the SDK returns (an encrypted field with its
  decrypted type; :mod:`.encryption`);
- ``sdk/nexysync/_generated/``: the resource layer, one module per resource with its sync class,
  its async class and their raw-response wrappers, plus ``_clients.py`` (the clients' resources),
  from the operation table and ``resources.yaml`` (the SDK's names for them; :mod:`.sdk`).

The package owns the reading of the contract (:mod:`.spec`), what is derived from it (the
modules above), and the rendering (:mod:`.render`): every module is a Jinja2 template of
``templates/`` filled with values computed here, then formatted by the pinned ruff (unused
imports out, then ``ruff format``). The command is :mod:`.cli`.

The output depends only on ``openapi.yaml``, the templates and the pinned tool versions: no
timestamps, no absolute paths, so ``tests/unit/test_generated.py`` can regenerate it and demand
zero difference.
"""
