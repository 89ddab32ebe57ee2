-- The user attributes an experiment keeps for breakdowns (its `dimensions`), as a
-- JSON object captured at first exposure.
ALTER TABLE exposures ADD COLUMN dimensions TEXT;
