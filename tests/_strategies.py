"""Strategy files the live tests drop into a `[backtest] strategy_dir`, as a user would write them."""

ROUND_TRIP = """
from memebot.strategy import Strategy
class CliRoundTrip(Strategy):
    name = "cli_round_trip"
    def on_start(self, ctx): self.n = 0
    def on_bar(self, ctx, bars):
        self.n += 1
        for sym in bars.symbols:
            if self.n == 2: ctx.buy(sym, notional=0.5)
            if self.n == 5: ctx.close(sym)
"""
