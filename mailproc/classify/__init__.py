"""Classify: what a parsed mail is, for whom, about what, and against which deadline.

This stage applies the campaign's decision rules (docs/campaign.md) and nothing else, in parts
a reader finds by name:

- `gate`: mail never to answer (own, bounces, auto-replies, bulk) and answers to mailproc;
- `units`: the unit, from subject, file names, 附件1's 填报单位, registered address, body;
- `files`: which file is 附件1, which are documents, which cannot be opened;
- `periods`: the item and the deadline it counts against;
- `problems`: what a submission lacks, which decides between 回执 and 缺项通知;
- `classifier`: the whole decision, a frozen `values.Classification`.

It reads the ledger only through `History`, so every part is tested without a database.
"""

from mailproc.classify.classifier import Classifier
from mailproc.classify.history import History

__all__ = ["Classifier", "History"]
