# Fit a linear model of fuel economy on the mtcars dataset that ships with R.
# Run by RStudioJobOperator: `params` holds the job's parameters with their types.
source(Sys.getenv("MLPLATFORM_R_RUNTIME"))

predictors <- unlist(params$predictors)
formula <- reformulate(predictors, response = "mpg")
set.seed(params$seed)
train_rows <- sample(nrow(mtcars), size = floor(params$train_fraction * nrow(mtcars)))
fit <- lm(formula, data = mtcars[train_rows, ])
test <- mtcars[-train_rows, ]
rmse <- sqrt(mean((predict(fit, test) - test$mpg)^2))

log_metrics(r_squared = summary(fit)$r.squared, rmse = rmse)
model_path <- file.path(output_dir(), "mpg_model.rds")
saveRDS(fit, model_path)
record("rmse", rmse)
record("model_path", model_path)
record("coefficients", as.list(coef(fit)))
