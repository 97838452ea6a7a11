"""Notebook-first research-to-production workbench for trading memecoins on Solana and EVM DEXes

Modules:

- `memebot.data.feeds`: Streaming market data behind one `Feed` interface: Solana JSON-RPC websockets (accounts, logs, slots), EVM `eth_subscribe` (Uniswap V2 Sync/Swap, newHeads), CEX via ccxt.pro and a Jupiter Price v3 poller. Reconnects with backoff and jitter, resubscribes, watches a heartbeat, detects slot/block gaps and back-fills what it missed through a pluggable gap filler; a bar aggregator turns ticks and swaps into 1s/1m/5m bars with no holes and no duplicates."""
