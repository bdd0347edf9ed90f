# airflow-mlplatform runtime for R: source(Sys.getenv("MLPLATFORM_R_RUNTIME"))
# record(name, value) reports a named value; log_metrics(...) prints one metrics line.
# Needs only the jsonlite package.

record <- function(name, value) {
  cat("::mlplatform::record ",
      jsonlite::toJSON(list(name = name, value = value), auto_unbox = TRUE, digits = NA, null = "null"),
      "\n", sep = "")
  invisible(value)
}

log_metrics <- function(...) {
  cat(jsonlite::toJSON(list(...), auto_unbox = TRUE, digits = NA), "\n", sep = "")
  invisible(NULL)
}

output_dir <- function() {
  d <- Sys.getenv("MLPLATFORM_OUTPUT_DIR", unset = getwd())
  dir.create(d, showWarnings = FALSE, recursive = TRUE)
  normalizePath(d)
}
