"""CSV collector: operators' spreadsheets in long or wide format, UTF-8 or GB18030, streamed in chunks."""

from collectors.csvfile.loader import UploadReport, load_csv
from collectors.csvfile.reader import CsvLayout, InputTooLarge, UnusableInput, detect_layout, scan_file

__all__ = ["CsvLayout", "InputTooLarge", "UnusableInput", "UploadReport", "detect_layout", "load_csv", "scan_file"]
