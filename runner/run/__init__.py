"""Stage 2, the run: the durable ledger, the dispatcher (creates, polls, fetches) under rate
limits and an injected clock, downloads and probing, and how a run is executed or resumed."""
