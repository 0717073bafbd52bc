"""Stage 1, the grid: read an experiment (CSV or Parquet), validate every cell, expand axes and
templates into jobs, and price the plan. Nothing here talks to the network."""
