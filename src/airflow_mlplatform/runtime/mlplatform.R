# airflow-mlplatform runtime for R: source(Sys.getenv("MLPLATFORM_R_RUNTIME"))
#   record(name, value)   report a named value (XCom `name` and return_value)
#   log_metrics(...)      print one metrics line, e.g. log_metrics(epoch = 1, rmse = 0.4)
#   parameters()          the job's parameters as a named list (also `params` in jobs)
#   output_dir()          this try's output folder (local)
#   output_uri(name)      where output_dir()/name is kept when the job ends (record this)
# Needs only the jsonlite package. Lines go to stdout; inside R Markdown, where knitr
# captures stdout into the report, they go to the file in MLPLATFORM_RECORD_FILE.

.mlplatform_emit <- function(line) {
  target <- Sys.getenv("MLPLATFORM_RECORD_FILE", unset = "")
  if (nzchar(target)) {
    cat(line, "\n", sep = "", file = target, append = TRUE)
  } else {
    cat(line, "\n", sep = "")
  }
}

record <- function(name, value) {
  reserved <- c("return_value", "metrics", "execution_record")
  if (!is.character(name) || length(name) != 1 ||
      !grepl("^[A-Za-z_][A-Za-z0-9_.-]{0,249}$", name) || name %in% reserved) {
    stop(sprintf(paste0("cannot record a value named '%s': a name starts with a letter or '_' ",
                        "and holds only letters, digits, '_', '.', '-', and is not one of %s"),
                 paste(name, collapse = " "), paste(reserved, collapse = ", ")), call. = FALSE)
  }
  if (is.null(value)) {
    payload <- paste0('{"name":', jsonlite::toJSON(name, auto_unbox = TRUE), ',"value":null}')
  } else {
    payload <- jsonlite::toJSON(list(name = name, value = value),
                                auto_unbox = TRUE, digits = NA, null = "null", na = "null")
  }
  .mlplatform_emit(paste0("::mlplatform::record ", payload))
  invisible(value)
}

log_metrics <- function(...) {
  .mlplatform_emit(as.character(jsonlite::toJSON(list(...), auto_unbox = TRUE, digits = NA, na = "null")))
  invisible(NULL)
}

parameters <- function() {
  text <- Sys.getenv("MLPLATFORM_PARAMETERS", unset = "{}")
  jsonlite::fromJSON(text, simplifyVector = TRUE, simplifyDataFrame = FALSE, simplifyMatrix = FALSE)
}

output_uri <- function(name = "") {
  base <- Sys.getenv("MLPLATFORM_OUTPUT_URI", unset = output_dir())
  if (nzchar(name)) paste0(sub("/+$", "", base), "/", name) else base
}

output_dir <- function() {
  d <- Sys.getenv("MLPLATFORM_OUTPUT_DIR", unset = getwd())
  dir.create(d, showWarnings = FALSE, recursive = TRUE)
  normalizePath(d)
}
