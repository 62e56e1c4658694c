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
import java.nio.file.Path;
import java.util.Map;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

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
    String user = env("NEO4J_USER", "neo4j");
    String password = env("NEO4J_PASSWORD", "persona-local");

    long started = System.nanoTime();
    DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
        .setConfig(BoltConnector.enabled, true)
        .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
        .setConfig(BoltConnector.advertised_address, new SocketAddress(host, port))
        .setConfig(HttpConnector.enabled, false)
        .setConfig(HttpsConnector.enabled, false)
        .setConfig(GraphDatabaseSettings.auth_enabled, true)
        .setConfig(GraphDatabaseSettings.pagecache_memory, pageCacheMiB * 1024 * 1024)
        .setConfig(GraphDatabaseSettings.memory_transaction_max_size, txMemoryMiB * 1024 * 1024)
        .build();

    // Community has one administrative user. Creating it (first start) or resetting its
    // password (every start) keeps the configured credentials the only ones that work.
    var system = dbms.database("system");
    boolean exists = system.executeTransactionally(
        "SHOW USERS YIELD user WHERE user = $user RETURN count(*) > 0 AS exists",
        Map.of("user", user),
        result -> (Boolean) result.next().get("exists"));
    String statement = exists
        ? "ALTER USER " + quote(user) + " SET PASSWORD $password CHANGE NOT REQUIRED"
        : "CREATE USER " + quote(user) + " SET PASSWORD $password CHANGE NOT REQUIRED";
    system.executeTransactionally(statement, Map.of("password", password));

    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      System.out.println("persona-neo4j: shutting down");
      dbms.shutdown();
      System.out.println("persona-neo4j: stopped");
    }, "persona-neo4j-shutdown"));

    long ms = (System.nanoTime() - started) / 1_000_000;
    System.out.printf("persona-neo4j: Neo4j %s ready on bolt://%s:%d (home %s, page cache %d MiB) in %d ms%n",
        org.neo4j.kernel.internal.Version.getNeo4jVersion(), host, port, home, pageCacheMiB, ms);
    Thread.currentThread().join();
  }

  private static String quote(String name) {
    return "`" + name.replace("`", "``") + "`";
  }
}
