-- Change notices (issue 21): every node keeps a phone number's cards and the API
-- keys it read in memory, and drops them when another node (or this one) changes
-- them. These triggers NOTIFY otpgw_changes in the changing transaction; PostgreSQL
-- delivers the notice to every listening node when it commits (store/changes.rs).
-- Payloads: 'c' || msisdn for a card changed on that number (a phone change names
-- both numbers), 'k' for any change of an API key. The code path's row lock
-- (UPDATE cards SET updated_at = updated_at) changes nothing and notifies nothing:
-- only a change of a column an SMS's answer depends on does. SQLite is one node and
-- has no such trigger.
CREATE FUNCTION otpgw_card_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('otpgw_changes', 'c' || OLD.msisdn);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.msisdn <> OLD.msisdn) THEN
        PERFORM pg_notify('otpgw_changes', 'c' || NEW.msisdn);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER cards_inserted_or_deleted AFTER INSERT OR DELETE ON cards
    FOR EACH ROW EXECUTE FUNCTION otpgw_card_changed();
CREATE TRIGGER cards_changed AFTER UPDATE ON cards
    FOR EACH ROW
    WHEN ((OLD.msisdn, OLD.status, OLD.failures, OLD.locked_until, OLD.epin_hash,
           OLD.closed_at, OLD.replaced_by, OLD.language, OLD.last4, OLD.last6_hash,
           OLD.pan_hash, OLD.phone_changed_at)
          IS DISTINCT FROM
          (NEW.msisdn, NEW.status, NEW.failures, NEW.locked_until, NEW.epin_hash,
           NEW.closed_at, NEW.replaced_by, NEW.language, NEW.last4, NEW.last6_hash,
           NEW.pan_hash, NEW.phone_changed_at))
    EXECUTE FUNCTION otpgw_card_changed();

CREATE FUNCTION otpgw_key_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('otpgw_changes', 'k');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION otpgw_key_changed();
