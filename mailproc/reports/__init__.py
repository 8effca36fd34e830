"""Reports: the campaign read from the ledger as of a moment: the status matrix (`status`), the
figures (`stats`), the consolidated workbook (`workbook`), the dashboard (`dashboard`), the
assessment (`assess`)."""
