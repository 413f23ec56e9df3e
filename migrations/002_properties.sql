-- Listings, the only source the assistant may speak from, and the names customers use for areas.

-- Arabic as customers type it: alef forms, ya / alef maqsura, ta marbuta, diacritics, tatweel and
-- Arabic-Indic digits folded, lower-cased. (translate deletes the last, unpaired character: tatweel.) Mirrored by execution/lib/text.py:normalize (tested equal).
CREATE FUNCTION normalize_text(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
    AS $$
        SELECT lower(regexp_replace(
            translate(value, 'أإآٱىة٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹ـ', 'اااايه01234567890123456789'),
            '[\u064B-\u0652\u0670]', '', 'g'))
    $$;

CREATE TABLE location_areas (
    id          bigserial PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name_en     text NOT NULL,
    name_ar     text NOT NULL
);

CREATE TABLE location_aliases (
    id               bigserial PRIMARY KEY,
    area_id          bigint NOT NULL REFERENCES location_areas (id) ON DELETE CASCADE,
    organization_id  bigint REFERENCES organizations (id) ON DELETE CASCADE,  -- NULL: for everyone
    alias            text NOT NULL,
    alias_normalized text GENERATED ALWAYS AS (normalize_text(alias)) STORED,
    language         text NOT NULL CHECK (language IN ('en', 'ar', 'arabizi'))
);
CREATE UNIQUE INDEX location_aliases_unique_idx
    ON location_aliases (COALESCE(organization_id, 0), alias_normalized);

CREATE TABLE properties (
    id               bigserial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    agent_id         bigint NOT NULL,
    reference        text NOT NULL CHECK (length(reference) BETWEEN 1 AND 64),
    project_name     text,
    developer_name   text,
    property_type    text NOT NULL CHECK (property_type IN
                     ('apartment', 'villa', 'chalet', 'duplex', 'townhouse', 'twin house', 'studio', 'penthouse')),
    listing_type     text NOT NULL CHECK (listing_type IN ('sale', 'rent')),
    city             text,
    district         text,
    district_ar      text,
    area_id          bigint REFERENCES location_areas (id),
    bedrooms         integer CHECK (bedrooms BETWEEN 0 AND 50),
    bathrooms        integer CHECK (bathrooms BETWEEN 0 AND 50),
    area_sqm         numeric(10, 2) CHECK (area_sqm > 0),
    price            numeric(16, 2) NOT NULL CHECK (price >= 0),
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payment_plan     text,
    delivery_date    date,                       -- NULL: ready to move in
    amenities        text[] NOT NULL DEFAULT '{}',
    description      text,
    status           text NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'reserved', 'sold')),
    latitude         double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude        double precision CHECK (longitude BETWEEN -180 AND 180),
    images           text[] NOT NULL DEFAULT '{}',
    search_vector    tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(project_name, '') || ' ' || coalesce(developer_name, '') || ' '
                                         || coalesce(district, '') || ' ' || coalesce(city, '')), 'A')
        || setweight(to_tsvector('simple', normalize_text(coalesce(district_ar, ''))), 'A')
        || setweight(to_tsvector('english', coalesce(description, '') || ' ' || property_type), 'B')
        || setweight(to_tsvector('simple', normalize_text(coalesce(description, ''))), 'C')
    ) STORED,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent_id, reference),
    FOREIGN KEY (organization_id, agent_id) REFERENCES agents (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX properties_filter_idx ON properties (agent_id, status, listing_type, property_type, bedrooms, price);
CREATE INDEX properties_area_idx ON properties (agent_id, area_id);
CREATE INDEX properties_search_idx ON properties USING gin (search_vector);

-- The areas of the demo listings, with the names customers use in English, Arabic and Arabizi.
INSERT INTO location_areas (slug, name_en, name_ar) VALUES
    ('new-cairo', 'New Cairo', 'القاهرة الجديدة'),
    ('6th-of-october', '6th of October', 'السادس من أكتوبر'),
    ('new-capital', 'New Administrative Capital', 'العاصمة الإدارية الجديدة'),
    ('north-coast', 'North Coast', 'الساحل الشمالي'),
    ('heliopolis', 'Heliopolis', 'مصر الجديدة'),
    ('maadi', 'Maadi', 'المعادي'),
    ('sheikh-zayed', 'Sheikh Zayed', 'الشيخ زايد'),
    ('zamalek', 'Zamalek', 'الزمالك');

INSERT INTO location_aliases (area_id, alias, language)
SELECT a.id, v.alias, v.language
  FROM (VALUES
    ('new-cairo', 'New Cairo', 'en'), ('new-cairo', 'Fifth Settlement', 'en'), ('new-cairo', '5th Settlement', 'en'),
    ('new-cairo', 'Tagamoa', 'arabizi'), ('new-cairo', 'el tagamo3', 'arabizi'), ('new-cairo', 'tagamo3', 'arabizi'),
    ('new-cairo', 'el tagamo3 el khames', 'arabizi'), ('new-cairo', 'التجمع الخامس', 'ar'), ('new-cairo', 'التجمع', 'ar'),
    ('new-cairo', 'القاهرة الجديدة', 'ar'),
    ('6th-of-october', '6th of October', 'en'), ('6th-of-october', '6 October', 'en'),
    ('6th-of-october', 'October', 'en'), ('6th-of-october', 'october city', 'en'), ('6th-of-october', '6 oct', 'en'),
    ('6th-of-october', 'أكتوبر', 'ar'), ('6th-of-october', 'السادس من أكتوبر', 'ar'), ('6th-of-october', '6 أكتوبر', 'ar'),
    ('new-capital', 'New Administrative Capital', 'en'), ('new-capital', 'New Capital', 'en'),
    ('new-capital', 'Administrative Capital', 'en'), ('new-capital', 'el 3asma el edareya', 'arabizi'),
    ('new-capital', '3asma', 'arabizi'), ('new-capital', 'el 3asma', 'arabizi'),
    ('new-capital', 'العاصمة الإدارية', 'ar'), ('new-capital', 'العاصمة الإدارية الجديدة', 'ar'), ('new-capital', 'العاصمة', 'ar'),
    ('north-coast', 'North Coast', 'en'), ('north-coast', 'Sahel', 'arabizi'), ('north-coast', 'el sa7el', 'arabizi'),
    ('north-coast', 'sa7el', 'arabizi'), ('north-coast', 'الساحل الشمالي', 'ar'), ('north-coast', 'الساحل', 'ar'),
    ('heliopolis', 'Heliopolis', 'en'), ('heliopolis', 'Masr El Gedida', 'arabizi'), ('heliopolis', 'masr el gdida', 'arabizi'),
    ('heliopolis', 'مصر الجديدة', 'ar'),
    ('maadi', 'Maadi', 'en'), ('maadi', 'el maadi', 'arabizi'), ('maadi', 'el ma3adi', 'arabizi'), ('maadi', 'المعادي', 'ar'),
    ('sheikh-zayed', 'Sheikh Zayed', 'en'), ('sheikh-zayed', 'Zayed', 'en'), ('sheikh-zayed', 'el sheikh zayed', 'arabizi'),
    ('sheikh-zayed', 'الشيخ زايد', 'ar'), ('sheikh-zayed', 'زايد', 'ar'),
    ('zamalek', 'Zamalek', 'en'), ('zamalek', 'el zamalek', 'arabizi'), ('zamalek', 'الزمالك', 'ar')
  ) AS v (slug, alias, language)
  JOIN location_areas a ON a.slug = v.slug;
