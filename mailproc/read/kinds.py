"""What an attachment is: the magic numbers that tell, the sets of kinds each stage acts on, and
the `Container` that opens an attachment's zip once for every stage that looks inside.

parse sniffs a kind from the bytes (`parse.sniff_kind`), sheets reads 附件1 from the kinds that
hold tables, classify decides which files are sheets, Word files and documents. They all look
the kinds and signatures up here, so a new format is added in one place.
"""

import io
import re
import zipfile

# -- magic numbers ----------------------------------------------------------------------------

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")  # what a zip file starts with
# The checks that refuse a broken file (sheets, classify.document_problem) open anything that
# starts like a zip record, so that a damaged one is reported, not passed over.
ZIP_PREFIX = b"PK"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # compound file: xls, doc, et, wps, encrypted xlsx
OLE2_SECTOR = 512  # the usual sector size: a complete file is a whole number of them
OLE2_WORKBOOK_STREAMS = ("Workbook", "Book")  # BIFF8, and BIFF5 and older
OLE2_WORD_STREAM = "WordDocument"
PDF_MAGIC = b"%PDF-"
PDF_MAGIC_WITHIN = 1024  # readers accept junk before the signature
PDF_END = b"%%EOF"
PDF_END_WITHIN = 2048  # of the end: a PDF without it was cut off
# The trailer's (or cross-reference stream's) entry naming the encryption dictionary, as an
# indirect reference or inline: only an encrypted PDF has one
PDF_ENCRYPT = re.compile(rb"/Encrypt\s*(?:\d+\s+\d+\s+R|<<)")
ZIP_ENCRYPTED_FLAG = 0x1  # general purpose bit 0 of a zip member: its data is encrypted
# What parse records on a member of an archive that is encrypted (classify names it as such)
PROTECTED_MEMBER = "password-protected archive member"
RAR_MAGIC = b"Rar!\x1a\x07"
SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
TNEF_MAGIC = b"\x78\x9f\x3e\x22"  # Outlook's winmail.dat: 0x223E9F78, little-endian
TNEF_CONTENT_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
TNEF_NAME = "winmail.dat"  # the name Outlook gives it
OFD_ROOT = "OFD.xml"  # the entry file at the root of every OFD package
# ISO base media files (an iPhone's HEIC photo) start with a box of type "ftyp" naming their
# brand; these brands are HEIF still images and image sequences, not video
FTYP_MARK = b"ftyp"  # at bytes 4–8
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
HEIF_BRANDS |= {b"avif", b"avis"}
IMAGE_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)
WEBP_MARK = b"WEBP"  # at bytes 8–12, after RIFF and a length

# -- kinds (as `parse.sniff_kind` names them) ----------------------------------------------------

WORKBOOK_KINDS = frozenset({"xlsx", "xls", "et", "ods"})  # binary workbooks: calamine reads them
# Files of cells that may be 附件1 as classify counts them: workbooks and CSV exports
SHEET_KINDS = WORKBOOK_KINDS | {"csv"}
WORD_KINDS = frozenset({"docx", "doc", "wps"})
# OFD (China's fixed-layout format) is a zip of XML parts inside, and a document all the same
DOCUMENT_KINDS = WORD_KINDS | {"pdf", "ofd"}
ARCHIVE_KINDS = frozenset({"zip", "rar", "7z"})
# Files that hold files, each member counted as an attachment of the mail (`read.containers`)
CONTAINER_KINDS = ARCHIVE_KINDS | {"tnef"}
# Binary formats whose file name stands in for the kind when the content is cut off or unknown
BINARY_KINDS = WORKBOOK_KINDS | DOCUMENT_KINDS | ARCHIVE_KINDS
ZIPPED_KINDS = frozenset({"xlsx", "docx", "ods", "et", "wps", "ofd"})  # a broken zip by these
OLE2_KINDS = frozenset({"xls", "doc", "et", "wps"})  # stored as compound files
OLD_WORD_KINDS = frozenset({"doc", "wps"})  # binary Word: tables read by a program (read.word)
CSV_EXTENSIONS = frozenset({"csv", "tsv"})  # text by these names is a table
# Text files whose tables are read: CSV exports, and Excel's 另存为“Unicode 文本” (a .txt)
TABLE_TEXT_SUFFIXES = CSV_EXTENSIONS | {"txt"}
# Workbooks whose content sniffs as another kind's: xlsm (with macros) and xlsb (binary cells)
# are zips with an xl/ folder like xlsx; the name stands for xlsx when the content is cut off
SUFFIX_KINDS = {"xlsm": "xlsx", "xlsb": "xlsx"}

# -- file name suffixes (what a unit meant to send, whatever the content) -------------------------

SHEET_SUFFIXES = frozenset(f".{kind}" for kind in SHEET_KINDS | SUFFIX_KINDS.keys())
WORD_SUFFIXES = frozenset(f".{kind}" for kind in WORD_KINDS)
DOCUMENT_SUFFIXES = frozenset(f".{kind}" for kind in DOCUMENT_KINDS) | {
    ".odt",
    ".rtf",
    ".ofd",
    ".wpt",
    ".dot",
}


def pdf_is_complete(data: bytes) -> bool:
    """Whether a PDF ends as PDFs do; one cut off in transfer does not."""
    return PDF_END in data[-PDF_END_WITHIN:]


class Container:
    """One attachment's bytes, with the zip they hold opened on first use and kept.

    Sniffing, the size and bomb checks, the error-mark scan, unpacking a zip and the document
    check all look inside the same zip; opening it once here spares a second reading of its
    central directory per stage. A value of the bytes alone: what it opens never changes.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._zip: zipfile.ZipFile | Exception | None = None

    def zip(self) -> zipfile.ZipFile:
        """The bytes opened as a zip archive; raises what `zipfile.ZipFile` raised, each time
        it is asked, when they are not one. Not to be closed: it is shared."""
        if self._zip is None:
            try:
                self._zip = zipfile.ZipFile(io.BytesIO(self.data))
            except Exception as exc:  # each caller judges the error as it did on its own
                self._zip = exc
        if isinstance(self._zip, Exception):
            raise self._zip.with_traceback(None)
        return self._zip


def password_protected(source: Container, kind: str) -> bool:
    """Whether a file is locked with a password: an encrypted Office file (xlsx/docx saved
    with a password are compound files holding an EncryptedPackage; xls and doc carry a
    FilePass record or the FIB's encrypted bit), a PDF with an /Encrypt entry, or a zip with an
    encrypted member (7z and rar, opened by `read.containers`, are judged there). Such a file is
    no damage: the unit is asked for it without the password.
    A function of the bytes alone (a zip is looked into through the container, opened once for
    every stage), cheap (no decryption), and it never raises: a file it cannot judge counts as
    not protected, and is then opened, or found damaged, as any other."""
    data = source.data
    try:
        if data.startswith(OLE2_MAGIC):
            import msoffcrypto  # with its cryptography stack, only where a compound file is met

            return bool(msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted())
        if data.startswith(ZIP_SIGNATURES):
            infos = source.zip().infolist()
            return any(info.flag_bits & ZIP_ENCRYPTED_FLAG for info in infos)
        if kind == "pdf":
            return PDF_ENCRYPT.search(data) is not None
    except Exception:  # a damaged file of any shape is judged by what opens it
        return False
    return False
