import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from execution import manage_properties as cmd
from execution.lib import property_store, tenant_store
from execution.lib.errors import InvalidData, NotFound
from execution.lib.listing_import import import_listings
from execution.manage_properties import add_property, delete_property, export_properties, update_property

DEMO = Path(__file__).resolve().parents[1] / "execution" / "demo_data"
HEADER = ("reference,agent_email,project_name,developer_name,property_type,listing_type,city,district,district_ar,"
          "bedrooms,bathrooms,area_sqm,price,currency,payment_plan,delivery,amenities,description,status,latitude,"
          "longitude,image_url")
GOOD = ('NH-9001,,Palm Hills,Palm,apartment,sale,Cairo,New Cairo,التجمع الخامس,3,2,150,7250000,EGP,"10% down, 8 years",'
        '2028-03-01,gym; swimming pool,"A flat",available,30.0,31.4,https://example.com/a.jpg')


@pytest.fixture
def agents(conn):
    org = tenant_store.upsert_organization(conn, slug="nile", name="Nile")
    other = tenant_store.upsert_organization(conn, slug="delta", name="Delta")
    a = tenant_store.upsert_agent(conn, organization_id=org["id"], email="sara@nile-homes.example", name="Sara",
                           password_hash=None)
    b = tenant_store.upsert_agent(conn, organization_id=other["id"], email="omar@delta-realty.example", name="Omar",
                           password_hash=None)
    return {**a, "organization_id": org["id"]}, {**b, "organization_id": other["id"]}


def _write(tmp_path, text, name="listings.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _count(conn, agent):
    return sum(property_store.count_properties(conn, agent_id=agent["id"]).values())


def test_the_demo_files_import_cleanly_and_reimport_changes_nothing(conn, agents, tmp_path):
    sara, omar = agents
    for name, agent, rows in (("listings_nile_homes.csv", sara, 60), ("listings_delta_realty.csv", omar, 25)):
        report = import_listings(conn, path=DEMO / name)   # each row's agent_email decides
        assert (report.errors, report.created, report.updated, report.written) == ((), rows, 0, True)
        assert _count(conn, agent) == rows
        again = import_listings(conn, path=DEMO / name, agent=agent)
        assert (again.created, again.updated, again.unchanged, again.changes) == (0, 0, rows, ())
    # Every demo district is a known area, so area filters see every listing.
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM properties WHERE area_id IS NULL")
        assert cur.fetchone()["n"] == 0


def test_a_changed_row_is_updated_by_reference(conn, agents, tmp_path):
    sara, _ = agents
    text = (DEMO / "listings_nile_homes.csv").read_text(encoding="utf-8")
    import_listings(conn, path=_write(tmp_path, text), agent=sara)
    changed = text.replace("6950000,EGP", "6800000,EGP", 1)
    report = import_listings(conn, path=_write(tmp_path, changed, "v2.csv"), agent=sara)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 59)
    assert report.changes == ("NH-0001: price",)
    assert property_store.get_property(conn, agent_id=sara["id"], reference="NH-0001")["price"] == 6800000


def test_a_file_without_some_columns_changes_only_the_columns_it_has(conn, agents, tmp_path):
    """A sheet of references and prices updates prices: the payment plan, photos, coordinates and a sold
    listing's status stay (before, every column the file lacked was cleared and the status reset)."""
    sara, _ = agents
    import_listings(conn, path=_write(tmp_path, HEADER + "\n" + GOOD.replace("available", "sold")), agent=sara)
    before = property_store.get_property(conn, agent_id=sara["id"], reference="NH-9001")
    prices = "Ref,Type,Purpose,Price,Currency\nNH-9001,apartment,sale,7100000,EGP\nNH-9002,villa,sale,9000000,EGP\n"
    dry = import_listings(conn, path=_write(tmp_path, prices, "prices.csv"), agent=sara, dry_run=True)
    assert (dry.created, dry.updated, dry.written) == (1, 1, False)
    assert {"payment_plan", "status", "image_url", "latitude", "district"} <= set(dry.kept)
    assert "price" not in dry.kept
    assert dry.changes == ("NH-9001: price",)           # what the sheet would change, field by field
    report = import_listings(conn, path=_write(tmp_path, prices, "prices.csv"), agent=sara)
    assert (report.created, report.updated, report.unchanged) == (1, 1, 0)
    after = property_store.get_property(conn, agent_id=sara["id"], reference="NH-9001")
    assert after["price"] == 7100000
    for kept in ("project_name", "payment_plan", "delivery_date", "amenities", "description", "status", "latitude",
                 "longitude", "images", "area_id", "bedrooms", "area_sqm", "district_ar"):
        assert after[kept] == before[kept], kept
    assert after["status"] == "sold"
    new = property_store.get_property(conn, agent_id=sara["id"], reference="NH-9002")
    assert (new["status"], new["payment_plan"], new["images"]) == ("available", None, [])
    # The same file again changes nothing; a column that is there but empty clears its field.
    again = import_listings(conn, path=_write(tmp_path, prices, "prices.csv"), agent=sara)
    assert (again.updated, again.unchanged, again.changes) == (0, 2, ())
    cleared = "Ref,Type,Purpose,Price,Currency,Payment plan\nNH-9001,apartment,sale,7100000,EGP,\n"
    assert import_listings(conn, path=_write(tmp_path, cleared, "cleared.csv"), agent=sara).updated == 1
    last = property_store.get_property(conn, agent_id=sara["id"], reference="NH-9001")
    assert last["payment_plan"] is None and last["images"] == before["images"]


BAD_FILES = [
    ("wrong types", HEADER + "\n" + GOOD + "\n" + GOOD.replace("NH-9001", "NH-9002").replace(",3,2,150,", ",three,2,150,")
     .replace("7250000", "7.2 million").replace("apartment", "castle").replace("2028-03-01", "soon")
     .replace("30.0,31.4", "200,31.4"),
     ["line 3: property_type: must be one of", "line 3: bedrooms: not a number: 'three'",
      "line 3: price: not a number: '7.2 million'", "line 3: delivery: not a date",
      "line 3: latitude: must be between -90 and 90"]),
    ("missing columns", "reference,project_name,price\nNH-1,X,100\n",
     ["file: missing required column(s): property_type, listing_type, currency"]),
    ("duplicate references", HEADER + "\n" + GOOD + "\n" + GOOD + "\n",
     ["line 3: reference: duplicate of line 2 (NH-9001)"]),
    ("empty file", "", ["file: the file is empty"]),
    ("header only", HEADER + "\n", ["file: the file has a header but no listings"]),
    ("missing values", HEADER + "\n" + ",,,,apartment,sale,,,,,,,,EGP" + "\n",
     ["line 2: reference: is required", "line 2: price: is required"]),
    ("bad currency and negative price", HEADER + "\n" + GOOD.replace("7250000,EGP", "-5,pounds") + "\n",
     ["line 2: price: must be zero or more", "line 2: currency: must be a 3-letter code"]),
    ("another agent's row", HEADER + "\n" + GOOD.replace("NH-9001,,", "NH-9001,omar@delta-realty.example,") + "\n",
     ["line 2: agent_email: names another agent than sara@nile-homes.example"]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_is_refused_with_line_field_and_reason_and_writes_nothing(conn, agents, tmp_path, text, expected):
    sara, _ = agents
    report = import_listings(conn, path=_write(tmp_path, text), agent=sara)
    for fragment in expected:
        assert any(e.startswith(fragment) for e in report.errors), (fragment, report.errors)
    assert report.exit_code == 65 and not report.written
    assert _count(conn, sara) == 0


def test_partial_writes_the_good_rows_and_reports_the_bad(conn, agents, tmp_path):
    sara, _ = agents
    text = HEADER + "\n" + GOOD + "\n" + GOOD.replace("NH-9001", "NH-9002").replace("apartment", "castle") + "\n"
    report = import_listings(conn, path=_write(tmp_path, text), agent=sara, partial=True)
    assert (report.created, report.rejected, report.written, report.exit_code) == (1, 1, True, 65)
    assert report.errors[0].startswith("line 3: property_type")
    assert property_store.get_property(conn, agent_id=sara["id"], reference="NH-9001") is not None


def test_dry_run_reports_exactly_and_writes_nothing(conn, agents):
    sara, _ = agents
    report = import_listings(conn, path=DEMO / "listings_nile_homes.csv", agent=sara, dry_run=True)
    assert (report.created, report.written, report.dry_run) == (60, False, True)
    assert _count(conn, sara) == 0


def test_xlsx_with_other_header_names_and_typed_cells(conn, agents, tmp_path):
    import openpyxl

    sara, _ = agents
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Ref", "Type", "Purpose", "Area", "Beds", "Size (sqm)", "Price", "Currency", "Handover",
                  "Features", "Status", "Colour"])
    sheet.append(["X-1", "Flat", "For Rent", "Maadi", 2, 120.0, 30000, "egp", "ready", "gym; roof terrace",
                  "available", "blue"])
    sheet.append(["X-2", "Villa", "sale", "6 October", 5, 400, 25_000_000, "EGP", datetime(2027, 6, 1), "", "sold",
                  ""])
    sheet.append([None] * 12)   # blank rows are skipped
    path = tmp_path / "sheet.xlsx"
    book.save(path)
    report = import_listings(conn, path=path, agent=sara)
    assert (report.errors, report.created) == ((), 2)
    flat = property_store.get_property(conn, agent_id=sara["id"], reference="X-1")
    villa = property_store.get_property(conn, agent_id=sara["id"], reference="X-2")
    assert (flat["property_type"], flat["listing_type"], flat["currency"], flat["delivery_date"]) == (
        "apartment", "rent", "EGP", None)
    assert flat["amenities"] == ["gym", "roof terrace"]
    assert (villa["delivery_date"].isoformat(), villa["status"], villa["bedrooms"]) == ("2027-06-01", "sold", 5)
    assert flat["area_id"] is not None and villa["area_id"] is not None


@pytest.mark.parametrize("name, content", [("fake.xlsx", b"not a zip at all"), ("listings.pdf", b"%PDF-1.4"),
                                           ("binary.csv", b"ref\x00\xff\xfe")])
def test_unreadable_files_get_a_reason(conn, agents, tmp_path, name, content):
    sara, _ = agents
    path = tmp_path / name
    path.write_bytes(content)
    report = import_listings(conn, path=path, agent=sara)
    assert report.exit_code == 65 and len(report.errors) == 1 and report.errors[0].startswith("file: ")


def test_add_update_show_delete_and_another_agent_sees_none_of_it(conn, agents):
    sara, omar = agents
    row = add_property(conn, agent=sara, fields={"reference": "S-1", "property_type": "villa", "listing_type": "sale",
                                                 "price": "12,500,000", "currency": "EGP", "district": "Zayed"})
    assert row["price"] == 12500000 and row["area_id"] is not None
    with pytest.raises(InvalidData, match="already exists"):
        add_property(conn, agent=sara, fields={"reference": "S-1", "property_type": "villa", "listing_type": "sale",
                                               "price": "1", "currency": "EGP"})
    updated = update_property(conn, agent=sara, reference="S-1", changes={"status": "reserved", "price": "12000000"})
    assert (updated["status"], updated["price"], updated["district"]) == ("reserved", 12000000, "Zayed")
    assert updated["updated_at"] >= row["updated_at"]
    with pytest.raises(InvalidData, match="price: must be zero or more"):
        update_property(conn, agent=sara, reference="S-1", changes={"price": "-1"})
    for action in (lambda: update_property(conn, agent=omar, reference="S-1", changes={"price": "1"}),
                   lambda: delete_property(conn, agent=omar, reference="S-1")):
        with pytest.raises(NotFound):
            action()
    assert delete_property(conn, agent=sara, reference="S-1") == {"deleted": "S-1"}
    assert property_store.get_property(conn, agent_id=sara["id"], reference="S-1") is None


def test_export_round_trips_through_import(conn, agents, tmp_path):
    sara, omar = agents
    import_listings(conn, path=DEMO / "listings_nile_homes.csv", agent=sara)
    out = io.StringIO()
    assert export_properties(conn, agent=sara, out=out) == 60
    exported = list(csv.DictReader(io.StringIO(out.getvalue())))
    original = {r["reference"]: r for r in csv.DictReader((DEMO / "listings_nile_homes.csv").open(encoding="utf-8"))}
    for row in exported:
        src = original[row["reference"]]
        for column in ("price", "bedrooms", "district_ar", "delivery", "payment_plan", "status", "image_url"):
            expected = "ready to move" if column == "delivery" and not src[column] else src[column]
            assert row[column] == expected, (row["reference"], column)
    # Importing the export for the same agent changes nothing.
    report = import_listings(conn, path=_write(tmp_path, out.getvalue(), "export.csv"), agent=sara)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 60)


def test_an_agency_alias_makes_its_own_district_searchable_by_area(conn, agents):
    sara, omar = agents
    add_property(conn, agent=sara, fields={"reference": "K-1", "property_type": "apartment", "listing_type": "sale",
                                           "price": "5000000", "currency": "EGP", "district": "Katameya Heights"})
    assert property_store.get_property(conn, agent_id=sara["id"], reference="K-1")["area_id"] is None
    new_cairo = property_store.areas_by_slug(conn, slugs=["new-cairo"])[0]
    assert property_store.add_alias(conn, organization_id=sara["organization_id"], area_id=new_cairo["id"],
                                    alias="Katameya Heights", language="en")
    assert property_store.get_property(conn, agent_id=sara["id"], reference="K-1")["area_id"] == new_cairo["id"]
    mine = {a.normalized for a in property_store.load_aliases(conn, organization_id=sara["organization_id"])}
    theirs = {a.normalized for a in property_store.load_aliases(conn, organization_id=omar["organization_id"])}
    assert "katameya heights" in mine and "katameya heights" not in theirs


def test_area_names_kept_by_a_process_follow_every_change_made_elsewhere(conn, agents, test_dsn):
    """load_aliases keeps the list per process; an alias added or removed on another connection counts at once."""
    import psycopg2
    import psycopg2.extras

    sara, _ = agents
    org = sara["organization_id"]
    first = property_store.load_aliases(conn, organization_id=org)
    assert property_store.load_aliases(conn, organization_id=org) == first        # served from the kept copy
    first.append("scribbled on by a caller")                                       # the caller's own list
    assert "scribbled on by a caller" not in property_store.load_aliases(conn, organization_id=org)
    new_cairo = property_store.areas_by_slug(conn, slugs=["new-cairo"])[0]
    assert property_store.add_alias(conn, organization_id=org, area_id=new_cairo["id"], alias="Gardenia Hills",
                                    language="en")
    assert "gardenia hills" in {a.normalized for a in property_store.load_aliases(conn, organization_id=org)}
    with conn.cursor() as cur:
        cur.execute("UPDATE location_aliases SET alias = 'Gardenia Heights' "
                    "WHERE organization_id = %s AND alias_normalized = 'gardenia hills'", (org,))
    names = {a.normalized for a in property_store.load_aliases(conn, organization_id=org)}
    assert "gardenia heights" in names and "gardenia hills" not in names                # an edit, same count
    with conn.cursor() as cur:
        cur.execute("DELETE FROM location_aliases WHERE organization_id = %s", (org,))
    assert "gardenia heights" not in {a.normalized for a in property_store.load_aliases(conn, organization_id=org)}
    # Another process's view: a connection of its own (nothing above committed) sees the shared names only.
    other = psycopg2.connect(test_dsn, cursor_factory=psycopg2.extras.RealDictCursor)
    try:
        assert "gardenia heights" not in {a.normalized for a in property_store.load_aliases(other, organization_id=org)}
    finally:
        other.close()


def test_cli_import_reports_and_exits_65_on_errors(resources, tmp_path, capsys):
    with resources.db.transaction() as c:
        org = tenant_store.upsert_organization(c, slug="nile", name="Nile")
        tenant_store.upsert_agent(c, organization_id=org["id"], email="sara@nile-homes.example", name="S", password_hash=None)
    bad = _write(tmp_path, HEADER + "\n" + GOOD.replace("7250000", "lots") + "\n")
    assert cmd.main(["import", str(bad), "--agent", "sara@nile-homes.example"], resources=resources) == 65
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == ["line 2: price: not a number: 'lots'"] and report["created"] == 0
    assert cmd.main(["import", str(DEMO / "listings_nile_homes.csv"), "--agent", "sara@nile-homes.example"],
                    resources=resources) == 0
    assert json.loads(capsys.readouterr().out)["created"] == 60
    assert cmd.main(["show", "nh-0001", "--agent", "sara@nile-homes.example"], resources=resources) == 0
    assert json.loads(capsys.readouterr().out)["project_name"] == "Amber Court"
    assert cmd.main(["update", "NH-0001", "--agent", "sara@nile-homes.example", "--set", "colour=red"],
                    resources=resources) == 65
    assert "colour=red" in capsys.readouterr().err
    assert cmd.main(["export", "--agent", "sara@nile-homes.example"], resources=resources) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 61
    assert cmd.main(["show", "NH-0001", "--agent", "nobody@x.example"], resources=resources) == 4
