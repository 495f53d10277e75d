using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Parley.Client
{
    /// <summary>
    /// Engine.IO v4 / Socket.IO v5 text packet codec (no binary attachments).
    /// Engine.IO text frame: one type digit + payload (0 open, 1 close, 2 ping, 3 pong, 4 message,
    /// 5 upgrade, 6 noop). A Socket.IO packet rides in an Engine.IO message and reads
    /// <c>&lt;type&gt;[&lt;nsp&gt;,][&lt;ack id&gt;][&lt;json&gt;]</c>, e.g. <c>42/client,12["message",{...}]</c>.
    /// </summary>
    internal static class Packets
    {
        public const char EioOpen = '0';
        public const char EioClose = '1';
        public const char EioPing = '2';
        public const char EioPong = '3';
        public const char EioMessage = '4';

        public const int Connect = 0;
        public const int Disconnect = 1;
        public const int Event = 2;
        public const int Ack = 3;
        public const int ConnectError = 4;
        public const int BinaryEvent = 5;
        public const int BinaryAck = 6;

        internal sealed record Packet(int Type, string Nsp, int? Id, JsonNode? Data, bool HasData);

        /// <summary>A complete Engine.IO text frame (leading '4') carrying one Socket.IO packet.</summary>
        public static string Encode(int type, string nsp, int? id = null, JsonNode? data = null)
        {
            var sb = new StringBuilder();
            sb.Append(EioMessage).Append(type);
            if (nsp != "/") sb.Append(nsp).Append(',');
            if (id.HasValue) sb.Append(id.Value);
            if (data != null) sb.Append(data.ToJsonString());
            return sb.ToString();
        }

        /// <summary>Decodes a Socket.IO packet: an Engine.IO message payload without its '4'. Null if malformed.</summary>
        public static Packet? Decode(string s)
        {
            if (string.IsNullOrEmpty(s) || s[0] < '0' || s[0] > '6') return null;
            int type = s[0] - '0';
            int i = 1, n = s.Length;
            if (type == BinaryEvent || type == BinaryAck)
            {
                int dash = s.IndexOf('-', i);
                if (dash < 0) return null;
                i = dash + 1;
            }
            string nsp = "/";
            if (i < n && s[i] == '/')
            {
                int comma = s.IndexOf(',', i);
                int end = comma < 0 ? n : comma;
                nsp = s.Substring(i, end - i);
                int q = nsp.IndexOf('?');
                if (q >= 0) nsp = nsp.Substring(0, q);
                i = comma < 0 ? n : comma + 1;
            }
            int idStart = i;
            while (i < n && s[i] >= '0' && s[i] <= '9') i++;
            int? id = i > idStart ? int.Parse(s.Substring(idStart, i - idStart)) : null;
            if (i >= n) return new Packet(type, nsp, id, null, false);
            try
            {
                return new Packet(type, nsp, id, JsonNode.Parse(s.Substring(i)), true);
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }
}
