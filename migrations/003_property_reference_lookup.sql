-- Customers and agents type references in any case ("nh-0001"): look them up by index.
CREATE INDEX properties_reference_upper_idx ON properties (agent_id, upper(reference));
