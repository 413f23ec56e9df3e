-- The inbox list's order (newest activity first, then id) as an index: a page reads 30 rows, not every conversation.
CREATE INDEX conversations_inbox_order_idx
    ON conversations (agent_id, (coalesce(last_message_at, '-infinity'::timestamptz)) DESC, id DESC);
