panel = 3
