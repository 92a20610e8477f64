"""The A2A bridge: this project's agents reachable by any A2A client, and A2A agents reachable from here.

It runs where the key is, on the agent's machine: A2A clients send plaintext, which only the
bridge turns into NexySync's encrypted messages. Needs the ``a2a`` extra.

- :mod:`~nexysync_cli.a2a.mapping`: what an A2A message becomes, and what a reply makes of the task;
- :mod:`~nexysync_cli.a2a.store`: the bridge's file (tasks, and what ties them to messages);
- :mod:`~nexysync_cli.a2a.relay`: the one NexySync stream every task in flight waits on;
- :mod:`~nexysync_cli.a2a.executor`: the A2A SDK's executor, one per exposed agent;
- :mod:`~nexysync_cli.a2a.app`: the cards and routes (JSON-RPC, HTTP+JSON), and the bearer token;
- :mod:`~nexysync_cli.a2a.serve`: ``nexysync a2a serve``;
- :mod:`~nexysync_cli.a2a.call`: calling an external A2A agent.
"""
