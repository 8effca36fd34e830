"""Read: raw mail bytes into a `ParsedMail` (`mail`), files sniffed by their bytes (`kinds`), 附件1
read into its tables (`tables`), Chinese text normalised for matching (`text`). Each is a pure
function of its input."""
