using System.Text;

namespace SparseAttn.Cli.Tests;

/// <summary>The .npy reader and writer: round trips and the formats they refuse.</summary>
[TestFixture]
public class NpyTests
{
    [TestCase(NpyType.Float32)]
    [TestCase(NpyType.Float16)]
    public void RoundTripKeepsShapeAndValues(NpyType type)
    {
        var data = Enumerable.Range(0, 2 * 3 * 5).Select(i => i * 0.25f - 3f).ToArray();
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray([2, 3, 5], data, type));
        Assert.That(stream.Length % 2, Is.Zero);
        stream.Position = 0;

        var read = Npy.Read(stream, "memory");

        Assert.That(read.Shape, Is.EqualTo(new long[] { 2, 3, 5 }));
        Assert.That(read.Type, Is.EqualTo(type));
        Assert.That(read.Data, Is.EqualTo(data));
    }

    [Test]
    public void DataStartsOnASixtyFourByteBoundary()
    {
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray([7], new float[7], NpyType.Float32));
        Assert.That((stream.Length - 7 * 4) % 64, Is.Zero);
    }

    private static MemoryStream File(string header, int dataBytes)
    {
        var padded = header.PadRight(117) + "\n";
        var stream = new MemoryStream();
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)padded.Length, 0]);
        stream.Write(Encoding.ASCII.GetBytes(padded));
        stream.Write(new byte[dataBytes]);
        stream.Position = 0;
        return stream;
    }

    [TestCase("<f8", "'<f8'")]
    [TestCase(">f4", "'>f4'")]
    [TestCase("<i4", "'<i4'")]
    public void OtherElementTypesAreRefused(string descr, string shown)
    {
        var stream = File($"{{'descr': '{descr}', 'fortran_order': False, 'shape': (4,), }}", 32);
        var ex = Assert.Throws<InvalidDataException>(() => Npy.Read(stream, "x.npy"));
        Assert.That(ex!.Message, Does.Contain(shown).And.Contain("x.npy"));
    }

    [Test]
    public void FortranOrderIsRefused()
    {
        var stream = File("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16);
        var ex = Assert.Throws<InvalidDataException>(() => Npy.Read(stream, "x.npy"));
        Assert.That(ex!.Message, Does.Contain("Fortran"));
    }

    [Test]
    public void TruncatedDataIsRefused()
    {
        var stream = File("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 12);
        var ex = Assert.Throws<InvalidDataException>(() => Npy.Read(stream, "x.npy"));
        Assert.That(ex!.Message, Does.Contain("ends early"));
    }

    [Test]
    public void NotAnNpyFileIsRefused()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Npy.Read(new MemoryStream("hello, world"u8.ToArray()), "x.npy"));
        Assert.That(ex!.Message, Does.Contain("not an .npy file"));
    }
}
