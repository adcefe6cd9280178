-- Gateways keep token records in memory while they LISTEN on `scimgate_token_changes`
-- (crates/domain/src/sql/token_records.rs). Every change authentication reads notifies that
-- channel as its transaction commits, whoever makes it (a replica, the CLI, plain SQL): a
-- token's revocation, expiry, scopes or secret, a tenant's settings, and any deletion. The
-- batched records of last use and of the IdP's User-Agent are written alone and notify nobody:
-- they would otherwise empty every gateway's records every few seconds.
CREATE FUNCTION scimgate_token_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scimgate_token_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER tokens_changed AFTER UPDATE ON tokens FOR EACH ROW
    WHEN (OLD.* IS DISTINCT FROM NEW.* AND OLD.last_used_at IS NOT DISTINCT FROM NEW.last_used_at)
    EXECUTE FUNCTION scimgate_token_changed();
CREATE TRIGGER tokens_deleted AFTER DELETE ON tokens FOR EACH ROW
    EXECUTE FUNCTION scimgate_token_changed();

CREATE TRIGGER tenants_changed AFTER UPDATE ON tenants FOR EACH ROW
    WHEN (OLD.* IS DISTINCT FROM NEW.* AND OLD.last_user_agent_at IS NOT DISTINCT FROM NEW.last_user_agent_at)
    EXECUTE FUNCTION scimgate_token_changed();
CREATE TRIGGER tenants_deleted AFTER DELETE ON tenants FOR EACH ROW
    EXECUTE FUNCTION scimgate_token_changed();
