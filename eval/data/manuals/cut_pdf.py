"""Cut pages FIRST..LAST (1-based, inclusive) of a PDF, keeping the outline entries and page
labels of the kept pages (qpdf --pages keeps dangling outline entries for the pages cut).

Example: ``python cut_pdf.py octave.pdf 1 166 out.pdf``
"""
import sys

from pypdf import PdfReader, PdfWriter


def label_ranges(reader, first, last):
    """(from, to, style, prefix, start) of the source's page labels, 0-based in the cut."""
    labels = reader.trailer["/Root"].get("/PageLabels")
    if labels is None:
        return []
    nums = labels.get_object()["/Nums"]
    entries = [(int(nums[i]), nums[i + 1].get_object()) for i in range(0, len(nums), 2)]
    out = []
    for k, (start_idx, spec) in enumerate(entries):
        end_idx = entries[k + 1][0] - 1 if k + 1 < len(entries) else len(reader.pages) - 1
        lo, hi = max(start_idx, first - 1), min(end_idx, last - 1)
        if lo > hi:
            continue
        begin = int(spec.get("/St", 1)) + (lo - start_idx)
        out.append((lo - first + 1, hi - first + 1, spec.get("/S"), spec.get("/P"), begin))
    return out


def main(src, first, last, out):
    reader = PdfReader(src)
    writer = PdfWriter()
    writer.append(reader, pages=(first - 1, last), import_outline=True)
    for lo, hi, style, prefix, start in label_ranges(reader, first, last):
        writer.set_page_label(lo, hi, style=style, prefix=prefix, start=start)
    writer.write(out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
