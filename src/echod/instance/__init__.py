"""Instance: the processes of one echod, what they share, reloads, and how they stop."""
