-- The limit decisions of many messages in one round trip (issue 21, group commit):
-- the store's group (store/group.rs) sends every call of otpgw_gcra_each that waited
-- for the same round trip as one call of this function. Call `r`'s keys are decided
-- in order exactly as otpgw_gcra_each decides them, and its first refusal ends
-- that call alone: the keys before it stay counted, the rest of the batch goes on.
-- Calls are decided in the order given, so two calls on one key (the global cap, a
-- peer's TPS) see each other's counts as two statements would.
--
-- Lock order: every key of the batch is locked first, in the keys' order (a missing
-- key is inserted as spent, tat 0, which decides as if it were absent), so two
-- nodes' batches cannot each hold a key the other waits for.
--
-- Three statements for the whole batch, however many keys: lock and read every
-- key's state, decide in memory (the same arithmetic as the single-key statement
-- in store/limits.rs), write every key's new state back. (Run as one statement per
-- key, as otpgw_gcra_each does, a batch cost about 60 us of the database's CPU per
-- key.) As otpgw_gcra_each, the call commits without waiting for its WAL to reach
-- the disk (synchronous_commit off, for this transaction only).
--
-- One row per refused call: its index `r`, the index `refused` (from 0) of its key
-- that did not fit, and `wait`, in the unit of p_now. A call with no row fits.
CREATE FUNCTION otpgw_gcra_batch(
    p_calls integer[], p_keys text[], p_now bigint[], p_intervals bigint[], p_tolerances bigint[])
RETURNS TABLE (r integer, refused integer, wait bigint)
LANGUAGE plpgsql
-- The function's statements are planned once per connection, for any array: a
-- generic plan may guess a large share of the table and scan all of it (seen: 3,558
-- scans of 4,000 rows and their dead versions in a 20-second run). Keys are only
-- ever looked up by the primary key.
SET enable_seqscan = off
AS $$
DECLARE
    i integer;
    j integer;
    t bigint;
    first integer := 1;
    stopped integer := -1;
    ks text[];
    ts bigint[];
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO limit_state (key, tat)
        SELECT DISTINCT k, 0 FROM unnest(p_keys) AS k ORDER BY k
        ON CONFLICT (key) DO NOTHING;
    SELECT coalesce(array_agg(l.key), '{}'), coalesce(array_agg(l.tat), '{}') INTO ks, ts
        FROM (SELECT limit_state.key, limit_state.tat FROM (SELECT DISTINCT unnest(p_keys)) AS k(k)
              JOIN limit_state ON limit_state.key = k
              ORDER BY limit_state.key FOR UPDATE OF limit_state) AS l;
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        IF i = 1 OR p_calls[i] <> p_calls[i - 1] THEN
            first := i;
        END IF;
        CONTINUE WHEN p_calls[i] = stopped;
        j := array_position(ks, p_keys[i]);
        IF j IS NULL THEN
            -- (Swept away by another node between the insert and the lock: absent.)
            ks := ks || p_keys[i];
            ts := ts || 0::bigint;
            j := array_length(ks, 1);
        END IF;
        t := GREATEST(ts[j], p_now[i]);
        IF t - p_now[i] <= p_tolerances[i] THEN
            ts[j] := t + p_intervals[i];
        ELSE
            stopped := p_calls[i];
            r := p_calls[i];
            refused := i - first;
            wait := GREATEST(ts[j] - p_now[i] - p_tolerances[i], 1);
            RETURN NEXT;
        END IF;
    END LOOP;
    INSERT INTO limit_state (key, tat) SELECT * FROM unnest(ks, ts)
        ON CONFLICT (key) DO UPDATE SET tat = EXCLUDED.tat;
END
$$;
