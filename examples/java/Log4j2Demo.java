import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.ThreadContext;

/**
 * Logs through log4j2's SyslogAppender: a plain line, a status line, a line
 * with MDC (ThreadContext) values that need escaping, and an error with a
 * stack trace. Configure with -Dlog4j2.configurationFile=...
 */
public class Log4j2Demo {
    private static final Logger LOG = LogManager.getLogger("com.example.Orders");

    public static void main(String[] args) throws Exception {
        LOG.info("Hello from log4j2");
        LOG.warn("status heap_used=1234 heap_max=4096 threads=17");
        ThreadContext.put("requestId", "r-42");
        ThreadContext.put("user", "alice \"the admin\" [ops]\\x");
        LOG.info("Order created id=1001");
        ThreadContext.clearAll();
        try {
            throw new IllegalStateException("boom", new java.io.IOException("disk gone"));
        } catch (IllegalStateException e) {
            LOG.error("Order failed id=1002", e);
        }
        LOG.info("two lines\nsecond line");
        Thread.sleep(300);
        LogManager.shutdown();
    }
}
