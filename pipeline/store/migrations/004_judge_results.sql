-- Judge validation (`safeset judges`): how often each LLM judge a config uses agrees with human labels,
-- one row per judge run (its records hold every verdict), judge and judge model.
CREATE TABLE judge_results (
    judge_run          VARCHAR NOT NULL,  -- the judge run's id (runs table)
    judge              VARCHAR NOT NULL,  -- safety_filter | evolve_judge | response_check | refusal_judge | harm_judge
    model              VARCHAR NOT NULL,  -- the judge role's model
    question           VARCHAR NOT NULL,  -- requests | refusals | responses
    labels             VARCHAR NOT NULL,  -- the labelled file
    n                  BIGINT NOT NULL,   -- labelled rows
    failed             BIGINT NOT NULL,   -- rows the judge gave no verdict for
    tp                 BIGINT NOT NULL,   -- confusion matrix; positive = unsafe, refusal or harmful
    fp                 BIGINT NOT NULL,
    fn                 BIGINT NOT NULL,
    tn                 BIGINT NOT NULL,
    agreement          DOUBLE,            -- (tp + tn) / judged rows
    precision          DOUBLE,
    recall             DOUBLE,
    f1                 DOUBLE,
    category_agreement DOUBLE,            -- safety_filter: labelled category among the judged ones
    created_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (judge_run, judge, model)
);
