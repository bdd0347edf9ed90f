# Runs an R script or renders an R Markdown document as an airflow-mlplatform job.
#   Rscript run_r.R script  FILE.R
#   Rscript run_r.R render  FILE.Rmd OUTPUT_DIR FORMAT
# (in a pod the operator passes this file's text with `Rscript -e` and the runtime's text in
# MLPLATFORM_R_RUNTIME_CODE, so the image needs only R, jsonlite and rmarkdown).
# Parameters come as JSON in MLPLATFORM_PARAMETERS; scripts see them as `params`.
local({
  runtime <- Sys.getenv("MLPLATFORM_R_RUNTIME", unset = "")
  if (!nzchar(runtime) || !file.exists(runtime)) {
    runtime <- tempfile("mlplatform-", fileext = ".R")
    writeLines(Sys.getenv("MLPLATFORM_R_RUNTIME_CODE"), runtime)
    Sys.setenv(MLPLATFORM_R_RUNTIME = runtime)
  }
})
source(Sys.getenv("MLPLATFORM_R_RUNTIME"))
args <- commandArgs(trailingOnly = TRUE)
mode <- args[[1]]
input <- normalizePath(args[[2]])
if (mode == "script") {
  params <- parameters()
  source(input, local = FALSE, echo = FALSE, chdir = FALSE)
} else if (mode == "render") {
  # knitr captures stdout into the report: the runtime writes to this file meanwhile, and
  # its lines are printed once rendering is done
  record_file <- tempfile("mlplatform-record-", fileext = ".jsonl")
  file.create(record_file)
  Sys.setenv(MLPLATFORM_RECORD_FILE = record_file)
  out <- rmarkdown::render(
    input,
    output_format = if (args[[4]] == "default") NULL else args[[4]],
    output_dir = args[[3]],
    params = parameters(),  # only those the document declares (filtered by the operator)
    envir = new.env(parent = globalenv()),
    knit_root_dir = dirname(input),
    intermediates_dir = tempdir(),
    quiet = TRUE  # no knitr progress bars or pandoc command lines in the task log
  )
  Sys.unsetenv("MLPLATFORM_RECORD_FILE")
  recorded <- readLines(record_file, warn = FALSE)
  if (length(recorded)) cat(recorded, sep = "\n")
  cat("\n::mlplatform::report ", out, "\n", sep = "")
} else {
  stop("unknown mode: ", mode)
}
