"""The agent's task JSON: typed requests and results."""
