"""Notebook-first research-to-production workbench for trading memecoins on Solana and EVM DEXes

Modules:

- `memebot.data.feeds`: Streaming market data behind one `Feed` interface: Solana JSON-RPC websockets (accounts, logs, slots), EVM `eth_subscribe` (Uniswap V2 Sync/Swap, newHeads), CEX via ccxt.pro and a Jupiter Price v3 poller. Reconnects with backoff and jitter, resubscribes, watches a heartbeat, detects slot/block gaps and back-fills what it missed through a pluggable gap filler; a bar aggregator turns ticks and swaps into 1s/1m/5m bars with no holes and no duplicates.
- `memebot.data.sim`: A seeded, deterministic memecoin market: pump.fun bonding curves (the real launch constants) that graduate into constant-product pools, with stochastic order flow — trade sizes, arrival rates and buy/sell imbalance calibrated on real pump.fun swaps, snipers at launch, rugs and dumps. It is a `Feed` (sync and async) and writes swaps, candles, pools and tokens into the store: the embedded default when there is no network."""
