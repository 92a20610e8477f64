"""The A2A bridge: this project's agents reachable by any A2A client, and A2A agents reachable from here.

It runs where the key is, on the agent's machine: A2A clients send plaintext, which only the
bridge turns into NexySync's encrypted messages. Needs the ``a2a`` extra. The ``nexysync``
command (``nexysync a2a serve``, ``nexysync a2a call``) and the MCP server (``ns_message``'s
``a2a`` action) use it; it is built on the SDK (``nexysync``) and the A2A SDK (``a2a-sdk``).

- :mod:`~nexysync_a2a.mapping`: what an A2A message becomes, and what a reply makes of the task;
- :mod:`~nexysync_a2a.store`: the bridge's file (tasks, and what ties them to messages);
- :mod:`~nexysync_a2a.relay`: the one NexySync stream every task in flight waits on;
- :mod:`~nexysync_a2a.executor`: the A2A SDK's executor, one per exposed agent;
- :mod:`~nexysync_a2a.app`: the cards and routes (JSON-RPC, HTTP+JSON), and the bearer token;
- :mod:`~nexysync_a2a.serve`: ``nexysync a2a serve``;
- :mod:`~nexysync_a2a.call`: calling an external A2A agent.
"""
