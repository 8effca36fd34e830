"""Fetch: mail as raw bytes with its receipt time, from the live mailbox (`imap`) or from stored
files (`files`)."""
