-- arca_notify in PL/pgSQL: a multi-statement SQL function is parsed and planned again in
-- every statement that calls it (and every write calls it), where PL/pgSQL keeps its plan
-- for the session. Same signature and meaning as in 002.
CREATE OR REPLACE FUNCTION arca_notify(payload text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS
$$ BEGIN PERFORM pg_notify(arca_channel(), payload); RETURN true; END $$;
