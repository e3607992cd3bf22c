"""The mnist app: classify digits read row by row with a recurrent network."""
