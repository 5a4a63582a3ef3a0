"""Where price history comes from: CSV files, CoinGecko, Polymarket (prices, books), ccxt."""
