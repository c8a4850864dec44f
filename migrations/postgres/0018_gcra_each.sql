-- Several GCRA decisions of one message in one round trip (issue 21): a peer's TPS
-- and the global cap, or a number's windows. The keys are decided in order, each
-- exactly as the single-key statement in store/limits.rs decides it, and the first
-- refusal ends the call: the keys before it stay counted, as they were when each
-- was its own statement. Each statement in the function takes its own snapshot
-- (READ COMMITTED), so a key another node has just inserted is seen.
--
-- A limit's state is not worth a disk flush: the call's transaction commits without
-- waiting for its WAL to reach the disk (synchronous_commit off, for this transaction
-- only). A crash can lose the last fraction of a second of limit decisions, which
-- lets a number send that much more after a restart; it loses nothing else, and the
-- next synchronous commit (a code's) flushes these records with its own. Each
-- decision had been its own flushed commit: on one code's path that was three
-- flushes of four.
--
-- `refused` is NULL when every key fits (each is counted); otherwise it is the
-- index (from 0) of the key that does not, and `wait` is how long until it would,
-- in the unit of `p_now`.
CREATE FUNCTION otpgw_gcra_each(
    p_keys text[], p_now bigint, p_intervals bigint[], p_tolerances bigint[],
    OUT refused integer, OUT wait bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    i integer;
    t bigint;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        INSERT INTO limit_state (key, tat) VALUES (p_keys[i], p_now + p_intervals[i])
            ON CONFLICT (key) DO UPDATE SET tat = GREATEST(limit_state.tat, p_now) + p_intervals[i]
            WHERE GREATEST(limit_state.tat, p_now) - p_now <= p_tolerances[i]
            RETURNING limit_state.tat INTO t;
        IF NOT FOUND THEN
            SELECT limit_state.tat INTO t FROM limit_state WHERE limit_state.key = p_keys[i];
            refused := i - 1;
            -- (A row swept away in between: wait one interval, as the single statement's caller does.)
            wait := CASE WHEN t IS NULL THEN p_intervals[i] ELSE GREATEST(t - p_now - p_tolerances[i], 1) END;
            RETURN;
        END IF;
    END LOOP;
END
$$;
