import java.io.BufferedInputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Enumeration;
import java.util.HexFormat;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipInputStream;

/**
 * Lists a ZIP archive's files as "sha256<TAB>size<TAB>name" lines, reading every byte
 * (so CRC-32 and sizes are checked by Java), with ZipFile (central directory) or
 * ZipInputStream (local headers only, as a streaming reader sees the archive).
 */
public final class ZipCheck {
    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        if (args[0].equals("zipfile")) {
            try (ZipFile zip = new ZipFile(args[1], StandardCharsets.UTF_8)) {
                Enumeration<? extends ZipEntry> entries = zip.entries();
                while (entries.hasMoreElements()) {
                    ZipEntry entry = entries.nextElement();
                    if (!entry.isDirectory()) {
                        try (InputStream in = zip.getInputStream(entry)) {
                            report(out, entry.getName(), in);
                        }
                    }
                }
            }
        } else {
            try (ZipInputStream zip = new ZipInputStream(
                    new BufferedInputStream(new FileInputStream(args[1]), 1 << 20), StandardCharsets.UTF_8)) {
                ZipEntry entry;
                while ((entry = zip.getNextEntry()) != null) {
                    if (!entry.isDirectory()) {
                        report(out, entry.getName(), zip);
                    }
                }
            }
        }
    }

    private static void report(PrintStream out, String name, InputStream in) throws Exception {
        MessageDigest digest = MessageDigest.getInstance("SHA-256");
        byte[] buffer = new byte[1 << 20];
        long size = 0;
        int count;
        while ((count = in.read(buffer)) > 0) {
            digest.update(buffer, 0, count);
            size += count;
        }
        out.println(HexFormat.of().formatHex(digest.digest()) + "\t" + size + "\t" + name);
    }
}
