"""Where price history comes from: CSV files, and (later) CoinGecko, Polymarket and ccxt."""
