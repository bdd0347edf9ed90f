# Runs an R script or renders an R Markdown document as an airflow-mlplatform job.
#   Rscript run_r.R script  FILE.R
#   Rscript run_r.R render  FILE.Rmd OUTPUT_DIR FORMAT
# Parameters come as JSON in MLPLATFORM_PARAMETERS; scripts see them as `params`.
args <- commandArgs(trailingOnly = TRUE)
source(Sys.getenv("MLPLATFORM_R_RUNTIME"))
mode <- args[[1]]
input <- normalizePath(args[[2]])
if (mode == "script") {
  params <- parameters()
  source(input, local = FALSE, echo = FALSE, chdir = FALSE)
} else if (mode == "render") {
  params <- parameters()  # only those the document declares (filtered by the operator)
  out <- rmarkdown::render(
    input,
    output_format = if (args[[4]] == "default") NULL else args[[4]],
    output_dir = args[[3]],
    params = params,
    envir = new.env(parent = globalenv()),
    knit_root_dir = dirname(input),
    intermediates_dir = tempdir(),
    quiet = FALSE
  )
  cat("::mlplatform::report ", out, "\n", sep = "")
} else {
  stop("unknown mode: ", mode)
}
