# Stage tokenize: a task's data as model features, once per (base tokenizer, task); every fine-tune
# and LogME score of the base and of its merged PTMs reuses them (ptmbench.tokenize).


rule tokenize:
    input:
        model="resources/models/{base}",
        data=lambda wc: task_data(wc.task),
    output:
        directory("results/tokenized/{base}/{task}"),
    log:
        "logs/tokenize/{base}/{task}.log",
    benchmark:
        "benchmarks/tokenize/{base}/{task}.tsv"
    conda:
        "../../envs/ptmbench.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        hp=lambda wc: hyperparameters(wc.base, wc.task),
    script:
        "../scripts/tokenize.py"
