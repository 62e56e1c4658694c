// Starts Neo4j Community embedded with its Bolt connector, for the local stack and CI.
//
// Run as a single-file program on the jars that pom.xml resolves:
//   java -Xmx512m -cp '<lib>/*' PersonaNeo4j.java
// Configuration comes from the environment (the stack CLI sets every variable):
//   PERSONA_NEO4J_HOME       data, logs and transaction logs live here
//   PERSONA_NEO4J_BOLT_HOST  default 127.0.0.1
//   PERSONA_NEO4J_BOLT_PORT  default 7687
//   PERSONA_NEO4J_PAGECACHE  page cache size in MiB, default 256
//   PERSONA_NEO4J_TX_MEMORY  per-transaction memory cap in MiB, default 256 (0 = unlimited)
//   NEO4J_USER / NEO4J_PASSWORD  the one user; auth is on, the password is set at every start
//
// Shutdown: SIGTERM (what `stack:down` sends) runs the shutdown hook, which stops the database
// cleanly (a checkpoint, no recovery at the next start). The hook is registered as soon as the
// database exists, so that no failure after that point can leave a database that only a kill
// stops. A marker file in the home folder lives exactly as long as a run: when a start finds it,
// the previous run was killed and Neo4j recovers the store (minutes on a big graph); the log says
// so. Output lines start with "persona-neo4j:"; the stack CLI and tests read them.
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.Map;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.QueryExecutionException;

public class PersonaNeo4j {
  private static String env(String name, String fallback) {
    String value = System.getenv(name);
    return value == null || value.isBlank() ? fallback : value;
  }

  public static void main(String[] args) throws Exception {
    Path home = Path.of(env("PERSONA_NEO4J_HOME", "neo4j-home")).toAbsolutePath();
    String host = env("PERSONA_NEO4J_BOLT_HOST", "127.0.0.1");
    int port = Integer.parseInt(env("PERSONA_NEO4J_BOLT_PORT", "7687"));
    long pageCacheMiB = Long.parseLong(env("PERSONA_NEO4J_PAGECACHE", "256"));
    long txMemoryMiB = Long.parseLong(env("PERSONA_NEO4J_TX_MEMORY", "256"));
    // How long a transaction waits for the bookmarks it was begun with (Neo4j's default: 30 s).
    String bookmarkWaitMs = env("PERSONA_NEO4J_BOOKMARK_WAIT_MS", "");
    String user = env("NEO4J_USER", "neo4j");
    String password = env("NEO4J_PASSWORD", "persona-local");

    Files.createDirectories(home);
    Path running = home.resolve("persona-neo4j.running");
    if (Files.exists(running)) {
      String other = Files.readString(running).trim();
      boolean alive = other.matches("\\d+") && ProcessHandle.of(Long.parseLong(other)).map(ProcessHandle::isAlive).orElse(false);
      if (alive) {
        System.out.println("persona-neo4j: another Neo4j (pid " + other + ") runs on " + home + "; not starting");
        System.exit(1);
      }
      System.out.println("persona-neo4j: the previous run did not shut down cleanly (it was killed);"
          + " Neo4j recovers the store now, which can take minutes on a big graph");
    }
    Files.writeString(running, Long.toString(ProcessHandle.current().pid()));

    long started = System.nanoTime();
    final DatabaseManagementService dbms;
    try {
      dbms = build(home, host, port, pageCacheMiB, txMemoryMiB, bookmarkWaitMs);
    } catch (RuntimeException e) {
      Files.deleteIfExists(running); // nothing started, nothing to recover
      throw e;
    }

    AtomicBoolean stopping = new AtomicBoolean(false);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      stopping.set(true);
      System.out.println("persona-neo4j: shutting down");
      long t = System.nanoTime();
      dbms.shutdown();
      try {
        Files.deleteIfExists(running);
      } catch (Exception e) {
        System.out.println("persona-neo4j: could not remove " + running + ": " + e);
      }
      System.out.printf("persona-neo4j: stopped cleanly in %d ms%n", (System.nanoTime() - t) / 1_000_000);
    }, "persona-neo4j-shutdown"));

    try {
      setCredentials(dbms.database("system"), user, password);
    } catch (Exception e) {
      if (stopping.get()) return; // stopped while starting: the hook shuts down, nothing failed
      System.out.println("persona-neo4j: could not set the credentials of user " + user + ": " + e.getMessage());
      e.printStackTrace(System.out);
      System.exit(1); // runs the shutdown hook: a clean stop, not a half-started server
    }

    long ms = (System.nanoTime() - started) / 1_000_000;
    System.out.printf("persona-neo4j: Neo4j %s ready on bolt://%s:%d (home %s, page cache %d MiB) in %d ms%n",
        org.neo4j.kernel.internal.Version.getNeo4jVersion(), host, port, home, pageCacheMiB, ms);
    Thread.currentThread().join();
  }

  private static DatabaseManagementService build(
      Path home, String host, int port, long pageCacheMiB, long txMemoryMiB, String bookmarkWaitMs) {
    DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(home);
    if (!bookmarkWaitMs.isBlank())
      builder.setConfig(GraphDatabaseSettings.bookmark_ready_timeout, Duration.ofMillis(Long.parseLong(bookmarkWaitMs)));
    return builder
        .setConfig(BoltConnector.enabled, true)
        .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
        .setConfig(BoltConnector.advertised_address, new SocketAddress(host, port))
        .setConfig(HttpConnector.enabled, false)
        .setConfig(HttpsConnector.enabled, false)
        .setConfig(GraphDatabaseSettings.auth_enabled, true)
        .setConfig(GraphDatabaseSettings.pagecache_memory, pageCacheMiB * 1024 * 1024)
        .setConfig(GraphDatabaseSettings.memory_transaction_max_size, txMemoryMiB * 1024 * 1024)
        // Bolt's shutdown, after the databases have stopped and checkpointed, waits this long for
        // its boss and then its worker event loop group to end; they end only after a 5 s quiet
        // period, so every shorter wait was waited out in full, connections or none (1 s each: a
        // stop took 2.2 s). Neo4j reads it in whole seconds, so 100 ms is no wait at all. The
        // second is how long each open connection may take to close (read in ms; none open, no wait).
        .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofMillis(100))
        .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofMillis(100))
        .build();
  }

  /**
   * Community has one administrative user. Creating it (first start) or setting its password
   * (every later start) keeps the configured credentials the only ones that work. Neo4j refuses
   * to "change" a password to the one it already has; that answer means the password is right.
   */
  private static void setCredentials(GraphDatabaseService system, String user, String password) {
    boolean exists = system.executeTransactionally(
        "SHOW USERS YIELD user WHERE user = $user RETURN count(*) > 0 AS exists",
        Map.of("user", user),
        result -> (Boolean) result.next().get("exists"));
    if (!exists) {
      system.executeTransactionally(
          "CREATE USER " + quote(user) + " SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
      System.out.println("persona-neo4j: created user " + user);
      return;
    }
    try {
      system.executeTransactionally(
          "ALTER USER " + quote(user) + " SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
      System.out.println("persona-neo4j: set the password of user " + user);
    } catch (QueryExecutionException e) {
      if (!String.valueOf(e.getMessage()).contains("Old password and new password cannot be the same")) throw e;
      // Already the configured password; make sure no change is pending from an older start.
      system.executeTransactionally("ALTER USER " + quote(user) + " SET PASSWORD CHANGE NOT REQUIRED");
    }
  }

  private static String quote(String name) {
    return "`" + name.replace("`", "``") + "`";
  }
}
