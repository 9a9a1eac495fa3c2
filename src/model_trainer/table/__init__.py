"""The input table: reading and checks, feature types, splits, memory."""
