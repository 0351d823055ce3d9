"""Text, markdown and HTML made from outcomes and saved runs; no measuring here."""
