// airflow-mlplatform runtime for Scala (Apache Toree notebooks, spark-submit jobs): paste this
// cell, or load it in one line in a Toree notebook:
//   assert(kernel.eval(Some(scala.io.Source.fromFile(sys.env("MLPLATFORM_SCALA_RUNTIME")).mkString))._1)
// then: mlplatform.record("accuracy", 0.93); mlplatform.logMetrics("epoch" -> 1, "loss" -> 0.3)
// Values: null/None, Boolean, Int, Long, Double, Float, BigInt, BigDecimal, String, Option,
// Seq/Array/Set, Map (keys as strings), java.util List/Map. Non-ASCII characters are written as JSON escapes.
object mlplatform {
  def str(s: String): String = s.flatMap {
    case '"' => "\\\""; case '\\' => "\\\\"; case '\n' => "\\n"; case '\r' => "\\r"; case '\t' => "\\t"
    case c if c < ' ' || c > '~' => "\\" + "u%04x".format(c.toInt); case c => c.toString
  }.mkString("\"", "", "\"")
  def json(v: Any): String = v match {
    case null | None => "null"
    case Some(x) => json(x)
    case s: String => str(s)
    case c: Char => str(c.toString)
    case d: Double => if (d.isNaN || d.isInfinite) "null" else d.toString
    case f: Float => json(f.toDouble)
    case b: Boolean => b.toString
    case n @ (_: Int | _: Long | _: Short | _: Byte | _: BigInt | _: BigDecimal) => n.toString
    case m: scala.collection.Map[_, _] => m.map { case (k, x) => str(k.toString) + ":" + json(x) }.mkString("{", ",", "}")
    case m: java.util.Map[_, _] => json(scala.collection.JavaConverters.mapAsScalaMap(m))
    case i: java.lang.Iterable[_] => json(scala.collection.JavaConverters.iterableAsScalaIterable(i))
    case a: Array[_] => json(a.toSeq)
    case s: Iterable[_] => s.map(json).mkString("[", ",", "]")
    case x => throw new IllegalArgumentException("cannot record a " + x.getClass.getName + ": use a String, number, Boolean, Seq or Map")
  }
  def record[T](name: String, value: T): T = {
    require(name.matches("[A-Za-z_][A-Za-z0-9_.\\-]{0,249}") && !Set("return_value", "metrics", "execution_record")(name),
      "cannot record a value named '" + name + "': a name starts with a letter or '_', holds only letters, digits, '_', '.', '-' and is not reserved")
    emit("::mlplatform::record {\"name\":" + str(name) + ",\"value\":" + json(value) + "}"); value
  }
  def logMetrics(metrics: (String, Any)*): Unit = emit(json(scala.collection.immutable.ListMap(metrics: _*)))
  // Toree sends stdout in timed chunks that may overtake each other: flush before and after
  // each line so that every line travels whole, in one chunk of its own.
  def emit(line: String): Unit = { Console.flush(); Console.print(line + "\n"); Console.flush() }
}
