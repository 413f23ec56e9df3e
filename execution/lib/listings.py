"""A listing as a validated record: header mapping, per-field checks, CSV and .xlsx reading.

Validation mirrors every CHECK on the properties table, so a file that passes here never fails
half-way through its INSERT. Errors carry the file line, the field and a reason.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterator

PROPERTY_TYPES = ("apartment", "villa", "chalet", "duplex", "townhouse", "twin house", "studio", "penthouse")
LISTING_TYPES = ("sale", "rent")
STATUSES = ("available", "reserved", "sold")
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 50_000

# The column order of an export, and of the demo files.
COLUMNS = (
    "reference", "agent_email", "project_name", "developer_name", "property_type", "listing_type", "city",
    "district", "district_ar", "bedrooms", "bathrooms", "area_sqm", "price", "currency", "payment_plan",
    "delivery", "amenities", "description", "status", "latitude", "longitude", "image_url",
)
REQUIRED_COLUMNS = ("reference", "property_type", "listing_type", "price", "currency")

# Headers as agents' spreadsheets spell them, folded (lower case, non-alphanumerics dropped).
_HEADER_SYNONYMS = {
    "reference": ("reference", "ref", "refno", "referencenumber", "listingid", "unitcode", "code", "المرجع", "الكود"),
    "agent_email": ("agentemail", "agent", "email"),
    "project_name": ("projectname", "project", "compound", "المشروع", "الكمبوند"),
    "developer_name": ("developername", "developer", "المطور"),
    "property_type": ("propertytype", "type", "unittype", "النوع"),
    "listing_type": ("listingtype", "saleorrent", "purpose", "offer", "الغرض"),
    "city": ("city", "المدينه", "المدينة"),
    "district": ("district", "area", "location", "neighbourhood", "neighborhood", "المنطقه", "المنطقة"),
    "district_ar": ("districtar", "districtarabic", "areaar", "arabicdistrict"),
    "bedrooms": ("bedrooms", "beds", "rooms", "br", "الغرف", "غرف"),
    "bathrooms": ("bathrooms", "baths", "الحمامات"),
    "area_sqm": ("areasqm", "sizesqm", "size", "sqm", "aream2", "builtuparea", "المساحه", "المساحة"),
    "price": ("price", "priceegp", "askingprice", "السعر"),
    "currency": ("currency", "العمله", "العملة"),
    "payment_plan": ("paymentplan", "installments", "نظامالسداد"),
    "delivery": ("delivery", "deliverydate", "handover", "التسليم"),
    "amenities": ("amenities", "features", "المميزات"),
    "description": ("description", "notes", "الوصف"),
    "status": ("status", "الحاله", "الحالة"),
    "latitude": ("latitude", "lat"),
    "longitude": ("longitude", "lng", "lon", "long"),
    "image_url": ("imageurl", "images", "image", "photos", "photo"),
}
_HEADER_INDEX = {syn: canonical for canonical, syns in _HEADER_SYNONYMS.items() for syn in syns}

_TYPE_SYNONYMS = {
    "flat": "apartment", "apt": "apartment", "town house": "townhouse", "town-house": "townhouse",
    "twinhouse": "twin house", "twin-house": "twin house", "twin villa": "twin house",
}
_LISTING_SYNONYMS = {"for sale": "sale", "buy": "sale", "sell": "sale", "for rent": "rent", "lease": "rent",
                     "rental": "rent"}
_READY = {"", "ready", "ready to move", "ready to move in", "immediate", "rtm"}


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class Listing:
    """One property as written to the properties table (agent and area are resolved by the caller)."""

    reference: str
    property_type: str
    listing_type: str
    price: Decimal
    currency: str
    project_name: str | None = None
    developer_name: str | None = None
    city: str | None = None
    district: str | None = None
    district_ar: str | None = None
    bedrooms: int | None = None
    bathrooms: int | None = None
    area_sqm: Decimal | None = None
    payment_plan: str | None = None
    delivery_date: date | None = None
    amenities: tuple[str, ...] = ()
    description: str | None = None
    status: str = "available"
    latitude: float | None = None
    longitude: float | None = None
    images: tuple[str, ...] = ()
    agent_email: str | None = None


LISTING_FIELDS = tuple(f.name for f in fields(Listing))


class FileProblem(ValueError):
    """The file as a whole cannot be read: wrong format, no header, required columns missing."""


def map_headers(headers: list[str]) -> tuple[dict[int, str], list[str]]:
    """Column index → canonical field, and the headers that mean nothing to us (ignored, reported)."""
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    for index, header in enumerate(headers):
        key = re.sub(r"[\W_]+", "", str(header or "").strip().lower())
        canonical = _HEADER_INDEX.get(key)
        if canonical is None:
            if key:
                unknown.append(str(header))
            continue
        if canonical in mapping.values():
            raise FileProblem(f"two columns mean {canonical!r}: rename or remove one ({header!r})")
        mapping[index] = canonical
    missing = [c for c in REQUIRED_COLUMNS if c not in mapping.values()]
    if missing:
        raise FileProblem(f"missing required column(s): {', '.join(missing)}")
    return mapping, unknown


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _number(value: Any, field: str, errors: list, line: int) -> Decimal | None:
    raw = _text(value).replace(",", "").replace("٬", "").replace(" ", "")
    if not raw:
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        errors.append(RowError(line, field, f"not a number: {_text(value)[:40]!r}"))
        return None
    if not number.is_finite():
        errors.append(RowError(line, field, "not a finite number"))
        return None
    return number


def _integer(value: Any, field: str, errors: list, line: int, *, low: int, high: int) -> int | None:
    number = _number(value, field, errors, line)
    if number is None:
        return None
    if number != number.to_integral_value():
        errors.append(RowError(line, field, f"must be a whole number, got {number}"))
        return None
    if not low <= number <= high:
        errors.append(RowError(line, field, f"must be between {low} and {high}, got {number}"))
        return None
    return int(number)


def _delivery(value: Any, errors: list, line: int) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raw = _text(value).lower()
    if raw in _READY:
        return None
    for pattern in ("%Y-%m-%d", "%Y-%m", "%d/%m/%Y", "%m/%Y"):
        try:
            return datetime.strptime(raw, pattern).date()
        except ValueError:
            continue
    if re.fullmatch(r"(19|20)\d\d", raw):
        return date(int(raw), 1, 1)
    errors.append(RowError(line, "delivery", f"not a date (YYYY-MM-DD, YYYY-MM or 'ready'): {raw[:40]!r}"))
    return None


def _coordinate(value: Any, field: str, errors: list, line: int, limit: int) -> float | None:
    number = _number(value, field, errors, line)
    if number is None:
        return None
    if not -limit <= number <= limit:
        errors.append(RowError(line, field, f"must be between -{limit} and {limit}, got {number}"))
        return None
    return float(number)


def _choice(value: Any, field: str, allowed: tuple[str, ...], synonyms: dict, errors: list, line: int) -> str | None:
    raw = re.sub(r"\s+", " ", _text(value).lower())
    raw = synonyms.get(raw, raw)
    if raw in allowed:
        return raw
    reason = "is required" if not raw else f"must be one of {', '.join(allowed)}; got {raw[:40]!r}"
    errors.append(RowError(line, field, reason))
    return None


def _optional_text(value: Any, limit: int = 4000) -> str | None:
    text = _text(value)
    return text[:limit] or None


def validate_row(raw: dict[str, Any], *, line: int) -> tuple[Listing | None, list[RowError]]:
    """A raw row (canonical field → cell value) as a Listing, or the reasons it is not one."""
    errors: list[RowError] = []
    reference = _text(raw.get("reference"))
    if not reference:
        errors.append(RowError(line, "reference", "is required"))
    elif len(reference) > 64:
        errors.append(RowError(line, "reference", "is longer than 64 characters"))
    property_type = _choice(raw.get("property_type"), "property_type", PROPERTY_TYPES, _TYPE_SYNONYMS, errors, line)
    listing_type = _choice(raw.get("listing_type"), "listing_type", LISTING_TYPES, _LISTING_SYNONYMS, errors, line)
    status = _choice(raw.get("status") or "available", "status", STATUSES, {}, errors, line)
    price = _number(raw.get("price"), "price", errors, line)
    if price is None and not any(e.field == "price" for e in errors):
        errors.append(RowError(line, "price", "is required"))
    elif price is not None and not (0 <= price < Decimal("1e14")):
        errors.append(RowError(line, "price", f"must be zero or more, got {price}"))
    currency = _text(raw.get("currency")).upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        errors.append(RowError(line, "currency", f"must be a 3-letter code such as EGP; got {currency[:20]!r}"))
    area = _number(raw.get("area_sqm"), "area_sqm", errors, line)
    if area is not None and not (0 < area < Decimal("1e8")):
        errors.append(RowError(line, "area_sqm", f"must be more than 0, got {area}"))
    listing = Listing(
        reference=reference,
        property_type=property_type or "",
        listing_type=listing_type or "",
        price=price if price is not None else Decimal(0),
        currency=currency,
        project_name=_optional_text(raw.get("project_name"), 200),
        developer_name=_optional_text(raw.get("developer_name"), 200),
        city=_optional_text(raw.get("city"), 200),
        district=_optional_text(raw.get("district"), 200),
        district_ar=_optional_text(raw.get("district_ar"), 200),
        bedrooms=_integer(raw.get("bedrooms"), "bedrooms", errors, line, low=0, high=50),
        bathrooms=_integer(raw.get("bathrooms"), "bathrooms", errors, line, low=0, high=50),
        area_sqm=area,
        payment_plan=_optional_text(raw.get("payment_plan"), 500),
        delivery_date=_delivery(raw.get("delivery"), errors, line),
        amenities=tuple(a for a in (p.strip().lower() for p in re.split(r"[;|\n]", _text(raw.get("amenities")))) if a),
        description=_optional_text(raw.get("description")),
        status=status or "available",
        latitude=_coordinate(raw.get("latitude"), "latitude", errors, line, 90),
        longitude=_coordinate(raw.get("longitude"), "longitude", errors, line, 180),
        images=tuple(u for u in re.split(r"[\s|;]+", _text(raw.get("image_url"))) if u),
        agent_email=_text(raw.get("agent_email")).lower() or None,
    )
    if (listing.latitude is None) != (listing.longitude is None) and not errors:
        errors.append(RowError(line, "latitude", "latitude and longitude go together; one is missing"))
    bad_image = next((u for u in listing.images if not re.match(r"https?://", u)), None)
    if bad_image:
        errors.append(RowError(line, "image_url", f"must start with http:// or https://; got {bad_image[:40]!r}"))
    return (None, errors) if errors else (listing, [])


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, canonical field → value) for each non-blank data row of a .csv or .xlsx file."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise FileProblem(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(path)
    else:
        raise FileProblem(f"unsupported file type {suffix or '(none)'!r}: use .csv or .xlsx")
    header = next(rows, None)
    if header is None or not any(_text(h) for h in header[1]):
        raise FileProblem("the file is empty: expected a header row and at least one listing")
    mapping, _unknown = map_headers(list(header[1]))
    count = 0
    for line, cells in rows:
        if not any(_text(c) for c in cells):
            continue
        count += 1
        if count > MAX_ROWS:
            raise FileProblem(f"more than {MAX_ROWS} rows; split the file")
        yield line, {mapping[i]: cells[i] for i in mapping if i < len(cells)}
    if count == 0:
        raise FileProblem("the file has a header but no listings")


def _csv_rows(path: Path) -> Iterator[tuple[int, list]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"not UTF-8 text (byte {exc.start}); save the sheet as 'CSV UTF-8'") from None
    if "\x00" in text:
        raise FileProblem("this is not a CSV file (it contains NUL bytes)")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for cells in reader:
            yield reader.line_num, cells
    except csv.Error as exc:
        raise FileProblem(f"line {reader.line_num}: unreadable CSV: {exc}") from None


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list]]:
    import openpyxl  # only imports of a spreadsheet need it

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # BadZipFile, InvalidFileException, KeyError: whatever a broken upload raises
        raise FileProblem(f"not a readable .xlsx workbook: {type(exc).__name__}") from None
    try:
        sheet = book.worksheets[0]
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(cells)
    finally:
        book.close()


def listing_to_row(row: dict) -> dict[str, str]:
    """A properties row (as read from the database) as export columns, the inverse of the import."""
    def fmt(value):
        if value is None:
            return ""
        if isinstance(value, Decimal):
            return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)
        return str(value)

    return {
        **{c: fmt(row.get(c)) for c in COLUMNS},
        "delivery": row["delivery_date"].isoformat() if row.get("delivery_date") else "ready to move",
        "amenities": "; ".join(row.get("amenities") or ()),
        "image_url": " ".join(row.get("images") or ()),
        "latitude": fmt(row.get("latitude")),
        "longitude": fmt(row.get("longitude")),
    }
