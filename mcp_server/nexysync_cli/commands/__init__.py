"""The CLI's commands, one module per area: account, projects, agents, init, keys, messaging."""
