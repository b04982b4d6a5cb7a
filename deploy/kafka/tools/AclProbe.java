// An independent Kafka client for checking ACLs: Apache Kafka's own Java client (the jars in
// deploy/kafka/lib), configured only by a client properties file such as `make run` writes.
//
//   java -cp 'deploy/kafka/lib/*' deploy/kafka/tools/AclProbe.java CONFIG produce TOPIC
//   java -cp 'deploy/kafka/lib/*' deploy/kafka/tools/AclProbe.java CONFIG consume TOPIC
//
// Exit 0: done (consume: at least one record read); 3: refused for lack of authorization;
// 4: authentication failed; 1: anything else.
import java.io.FileReader;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class AclProbe {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileReader in = new FileReader(args[0])) {
            props.load(in);
        }
        String topic = args[2];
        try {
            if (args[1].equals("produce")) {
                props.put("max.block.ms", "15000");
                props.put("delivery.timeout.ms", "20000");
                props.put("request.timeout.ms", "15000");
                try (var producer = new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
                    producer.send(new ProducerRecord<>(topic, "acl-probe".getBytes(), "{}".getBytes())).get();
                }
            } else {
                props.put("group.id", props.getProperty("group.id", "acl-probe-" + UUID.randomUUID()));
                props.put("auto.offset.reset", "earliest");
                props.put("enable.auto.commit", "false");
                try (var consumer = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                    consumer.subscribe(List.of(topic));
                    long deadline = System.currentTimeMillis() + 30_000;
                    while (true) {
                        ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofSeconds(1));
                        if (!records.isEmpty()) break;
                        if (System.currentTimeMillis() > deadline) throw new IllegalStateException("no records");
                    }
                }
            }
            System.out.println("ok");
        } catch (Exception e) {
            Throwable cause = e;
            while (cause != null) {
                if (cause instanceof AuthorizationException) {
                    System.out.println("refused: " + cause.getMessage());
                    System.exit(3);
                }
                if (cause instanceof AuthenticationException) {
                    System.out.println("authentication failed: " + cause.getMessage());
                    System.exit(4);
                }
                cause = cause.getCause();
            }
            System.out.println("failed: " + e);
            System.exit(1);
        }
    }
}
