import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.util.List;

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

  public static void main(String[] args) throws Exception {
    String host = args.length > 0 ? args[0] : "127.0.0.1";
    int port = args.length > 1 ? Integer.parseInt(args[1]) : 0;
    MongoBackend backend = args.length > 2 ? new H2Backend(args[2]) : new MemoryBackend();
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
