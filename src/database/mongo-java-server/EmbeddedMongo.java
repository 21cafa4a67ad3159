import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Starts mongo-java-server for the Node process that spawned it.
 *
 * Usage: EmbeddedMongo <host> <port> [h2-file]. Port 0 picks a free port. Without a file the
 * data lives in memory; with one it is kept in an H2 MVStore file and survives a restart.
 * Prints "LISTENING <port>" once it accepts connections. It stops when its standard input
 * closes, so it cannot outlive its parent even when the parent is killed.
 */
public final class EmbeddedMongo {
  /** Mongoose 9's driver refuses servers below wire version 9; 21 is what MongoDB 7.0 reports. */
  private static final MongoVersion MONGO_7_0 = new MongoVersion() {
    @Override
    public List<Integer> getVersionArray() {
      return List.of(7, 0, 0);
    }

    @Override
    public int getWireVersion() {
      return 21;
    }
  };

  /**
   * The H2 backend, made durable per write: MVStore commits on its own only about once a second,
   * so a JVM killed outright lost the writes of its last second, acknowledged ones included
   * (DESIGN.md, Invariant 5). Here every command that may write commits the store before its
   * answer is sent (the wire handler replies only after handleCommand returns). MVStore.commit()
   * waits for a store already in progress on another connection, then writes whatever is still
   * unsaved, so concurrent writes share one commit. The chunk reaches the operating system, not
   * necessarily the platter: a killed process loses nothing, a machine losing power may.
   */
  static final class DurableH2Backend extends H2Backend {
    /** Commands that never change data; any other command is committed after it runs. */
    private static final Set<String> READ_ONLY = Set.of(
        "find", "getmore", "count", "distinct", "killcursors", "listcollections", "listindexes", "listdatabases",
        "ping", "hello", "ismaster", "buildinfo", "serverstatus", "whatsmyuri", "getlasterror", "getlog",
        "dbstats", "collstats", "explain", "endsessions", "connectionstatus", "hostinfo", "getparameter",
        "getcmdlineopts", "getfreemonitoringstatus", "currentop");

    DurableH2Backend(String fileName) {
      super(fileName);
    }

    @Override
    public Document handleCommand(Channel channel, String database, String command, Document query) {
      try {
        return super.handleCommand(channel, database, command, query);
      } finally {
        // Also after a failed command: an ordered insert stopped by a duplicate key has
        // acknowledged the documents before it.
        if (!READ_ONLY.contains(command.toLowerCase(Locale.ROOT))) commit();
      }
    }
  }

  public static void main(String[] args) throws Exception {
    String host = args.length > 0 ? args[0] : "127.0.0.1";
    int port = args.length > 1 ? Integer.parseInt(args[1]) : 0;
    MongoBackend backend = args.length > 2 ? new DurableH2Backend(args[2]) : new MemoryBackend();
    MongoServer server = new MongoServer(backend.version(MONGO_7_0));
    server.bind(host, port);
    Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));

    InetSocketAddress address = server.getLocalAddress();
    System.out.println("LISTENING " + address.getPort());
    System.out.flush();

    InputStream in = System.in;
    byte[] buffer = new byte[64];
    while (in.read(buffer) >= 0) {
      // The parent never writes; reading only waits for the pipe to close.
    }
    System.exit(0);
  }
}
