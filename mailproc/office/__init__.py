"""The office: a person's decisions recorded and applied (`actions`), and every stored mail read
again after a rules change (`replay`)."""
