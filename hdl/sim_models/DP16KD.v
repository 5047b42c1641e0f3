// Behavioural model of the Lattice ECP5 DP16KD block RAM, for simulating the Verilog that
// codesign generates for ECP5 (hdl/dataflow/bram.py) with Verilator or Icarus. Only what
// codesign instantiates is modelled: INITVAL contents, writes on port A, reads on either
// port, at 1, 2, 4, 9 or 18 bits per port (not the 36-bit mode), one clock for both ports,
// each port's read with or without its output register (REGMODE "OUTREG": the word one
// more cycle later, clocked with OCE).
//
// Contents: 1024 rows of 18 bits, row r at bits [20*(r%16) +: 18] of INITVAL_(r/16), each
// row two 9-bit halves. A word of w <= 4 bits fills the low 8 bits of a half (bit 8 unused):
// word a sits in row a/(16/w) at bit w*k + (k >= 8/w), k = a % (16/w); a 9-bit word a in row
// a/2 at bit 9*(a%2); an 18-bit word in row a; a 36-bit word in rows 2a and 2a+1. This is
// the layout Yosys's ECP5 block-RAM mapping writes (tests/hdl/test_bram.py compares them).
// The parameters codesign leaves at the primitive's defaults (RESETMODE, CSDECODE_x,
// WRITEMODE_x, GSR) are not declared: an instance that sets one fails to elaborate here.
`default_nettype none
module DP16KD #(
    parameter integer DATA_WIDTH_A = 18,
    parameter integer DATA_WIDTH_B = 18,
    parameter REGMODE_A = "NOREG",
    parameter REGMODE_B = "NOREG",
    parameter [319:0] INITVAL_00 = 320'h0,
    parameter [319:0] INITVAL_01 = 320'h0,
    parameter [319:0] INITVAL_02 = 320'h0,
    parameter [319:0] INITVAL_03 = 320'h0,
    parameter [319:0] INITVAL_04 = 320'h0,
    parameter [319:0] INITVAL_05 = 320'h0,
    parameter [319:0] INITVAL_06 = 320'h0,
    parameter [319:0] INITVAL_07 = 320'h0,
    parameter [319:0] INITVAL_08 = 320'h0,
    parameter [319:0] INITVAL_09 = 320'h0,
    parameter [319:0] INITVAL_0A = 320'h0,
    parameter [319:0] INITVAL_0B = 320'h0,
    parameter [319:0] INITVAL_0C = 320'h0,
    parameter [319:0] INITVAL_0D = 320'h0,
    parameter [319:0] INITVAL_0E = 320'h0,
    parameter [319:0] INITVAL_0F = 320'h0,
    parameter [319:0] INITVAL_10 = 320'h0,
    parameter [319:0] INITVAL_11 = 320'h0,
    parameter [319:0] INITVAL_12 = 320'h0,
    parameter [319:0] INITVAL_13 = 320'h0,
    parameter [319:0] INITVAL_14 = 320'h0,
    parameter [319:0] INITVAL_15 = 320'h0,
    parameter [319:0] INITVAL_16 = 320'h0,
    parameter [319:0] INITVAL_17 = 320'h0,
    parameter [319:0] INITVAL_18 = 320'h0,
    parameter [319:0] INITVAL_19 = 320'h0,
    parameter [319:0] INITVAL_1A = 320'h0,
    parameter [319:0] INITVAL_1B = 320'h0,
    parameter [319:0] INITVAL_1C = 320'h0,
    parameter [319:0] INITVAL_1D = 320'h0,
    parameter [319:0] INITVAL_1E = 320'h0,
    parameter [319:0] INITVAL_1F = 320'h0,
    parameter [319:0] INITVAL_20 = 320'h0,
    parameter [319:0] INITVAL_21 = 320'h0,
    parameter [319:0] INITVAL_22 = 320'h0,
    parameter [319:0] INITVAL_23 = 320'h0,
    parameter [319:0] INITVAL_24 = 320'h0,
    parameter [319:0] INITVAL_25 = 320'h0,
    parameter [319:0] INITVAL_26 = 320'h0,
    parameter [319:0] INITVAL_27 = 320'h0,
    parameter [319:0] INITVAL_28 = 320'h0,
    parameter [319:0] INITVAL_29 = 320'h0,
    parameter [319:0] INITVAL_2A = 320'h0,
    parameter [319:0] INITVAL_2B = 320'h0,
    parameter [319:0] INITVAL_2C = 320'h0,
    parameter [319:0] INITVAL_2D = 320'h0,
    parameter [319:0] INITVAL_2E = 320'h0,
    parameter [319:0] INITVAL_2F = 320'h0,
    parameter [319:0] INITVAL_30 = 320'h0,
    parameter [319:0] INITVAL_31 = 320'h0,
    parameter [319:0] INITVAL_32 = 320'h0,
    parameter [319:0] INITVAL_33 = 320'h0,
    parameter [319:0] INITVAL_34 = 320'h0,
    parameter [319:0] INITVAL_35 = 320'h0,
    parameter [319:0] INITVAL_36 = 320'h0,
    parameter [319:0] INITVAL_37 = 320'h0,
    parameter [319:0] INITVAL_38 = 320'h0,
    parameter [319:0] INITVAL_39 = 320'h0,
    parameter [319:0] INITVAL_3A = 320'h0,
    parameter [319:0] INITVAL_3B = 320'h0,
    parameter [319:0] INITVAL_3C = 320'h0,
    parameter [319:0] INITVAL_3D = 320'h0,
    parameter [319:0] INITVAL_3E = 320'h0,
    parameter [319:0] INITVAL_3F = 320'h0
) (
    input wire DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input wire ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input wire CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output wire DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
    input wire DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input wire ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input wire CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output wire DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    reg [17:0] rows [0:1023];
    task automatic load(input [5:0] block, input [319:0] value);
        integer i;
        for (i = 0; i < 16; i = i + 1) rows[{block, 4'b0} + i] = value[20 * i +: 18];
    endtask
    initial begin
        if (DATA_WIDTH_A > 18 || DATA_WIDTH_B > 18) $fatal(1, "DP16KD model: no 36-bit mode");
        load(6'h00, INITVAL_00);
        load(6'h01, INITVAL_01);
        load(6'h02, INITVAL_02);
        load(6'h03, INITVAL_03);
        load(6'h04, INITVAL_04);
        load(6'h05, INITVAL_05);
        load(6'h06, INITVAL_06);
        load(6'h07, INITVAL_07);
        load(6'h08, INITVAL_08);
        load(6'h09, INITVAL_09);
        load(6'h0A, INITVAL_0A);
        load(6'h0B, INITVAL_0B);
        load(6'h0C, INITVAL_0C);
        load(6'h0D, INITVAL_0D);
        load(6'h0E, INITVAL_0E);
        load(6'h0F, INITVAL_0F);
        load(6'h10, INITVAL_10);
        load(6'h11, INITVAL_11);
        load(6'h12, INITVAL_12);
        load(6'h13, INITVAL_13);
        load(6'h14, INITVAL_14);
        load(6'h15, INITVAL_15);
        load(6'h16, INITVAL_16);
        load(6'h17, INITVAL_17);
        load(6'h18, INITVAL_18);
        load(6'h19, INITVAL_19);
        load(6'h1A, INITVAL_1A);
        load(6'h1B, INITVAL_1B);
        load(6'h1C, INITVAL_1C);
        load(6'h1D, INITVAL_1D);
        load(6'h1E, INITVAL_1E);
        load(6'h1F, INITVAL_1F);
        load(6'h20, INITVAL_20);
        load(6'h21, INITVAL_21);
        load(6'h22, INITVAL_22);
        load(6'h23, INITVAL_23);
        load(6'h24, INITVAL_24);
        load(6'h25, INITVAL_25);
        load(6'h26, INITVAL_26);
        load(6'h27, INITVAL_27);
        load(6'h28, INITVAL_28);
        load(6'h29, INITVAL_29);
        load(6'h2A, INITVAL_2A);
        load(6'h2B, INITVAL_2B);
        load(6'h2C, INITVAL_2C);
        load(6'h2D, INITVAL_2D);
        load(6'h2E, INITVAL_2E);
        load(6'h2F, INITVAL_2F);
        load(6'h30, INITVAL_30);
        load(6'h31, INITVAL_31);
        load(6'h32, INITVAL_32);
        load(6'h33, INITVAL_33);
        load(6'h34, INITVAL_34);
        load(6'h35, INITVAL_35);
        load(6'h36, INITVAL_36);
        load(6'h37, INITVAL_37);
        load(6'h38, INITVAL_38);
        load(6'h39, INITVAL_39);
        load(6'h3A, INITVAL_3A);
        load(6'h3B, INITVAL_3B);
        load(6'h3C, INITVAL_3C);
        load(6'h3D, INITVAL_3D);
        load(6'h3E, INITVAL_3E);
        load(6'h3F, INITVAL_3F);
    end
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    // the row and the lowest bit of the word of w <= 18 bits at address pins ad
    function automatic [14:0] where(input integer w, input [13:0] ad);
        reg [4:0] bit0;
        begin
            // k = the word's index in its row: bit w*k, plus 1 in the row's upper half
            case (w)
                18: bit0 = 5'd0;
                9: bit0 = ad[3] ? 5'd9 : 5'd0;
                4: bit0 = {1'b0, ad[3:2], 2'b00} + {4'b0, ad[3]};
                2: bit0 = {1'b0, ad[3:1], 1'b0} + {4'b0, ad[3]};
                default: bit0 = {1'b0, ad[3:0]} + {4'b0, ad[3]};
            endcase
            where = {ad[13:4], bit0};
        end
    endfunction
    function automatic [17:0] word(input integer w, input [13:0] ad);
        reg [14:0] at;
        begin
            at = where(w, ad);
            word = (rows[at[14:5]] >> at[4:0]) & ((18'd1 << w) - 18'd1);
        end
    endfunction
    // Both ports run on one clock (CLKA; codesign connects CLKB to the same clock). Port A
    // may write (an 18-bit write needs both byte enables, ADA0 and ADA1, high); a read on
    // port B of the word port A writes in the same cycle is undefined on the device and
    // reads as X here.
    reg [17:0] qa = 18'd0, qa_r = 18'd0, qb = 18'd0, qb_r = 18'd0;
    wire [14:0] wat = where(DATA_WIDTH_A, ada);
    integer i;
    always @(posedge CLKA) begin
        if (CEB && WEB) $fatal(1, "DP16KD model: port B write (not modelled)");
        if (CEA && WEA && DATA_WIDTH_A == 18 && !(ADA0 && ADA1))
            $fatal(1, "DP16KD model: an 18-bit write without both byte enables (not modelled)");
        if (CEA) qa <= word(DATA_WIDTH_A, ada);
        if (CEB) qb <= word(DATA_WIDTH_B, adb);
        if (CEA && WEA) begin
            if (CEB && where(DATA_WIDTH_B, adb) == wat) qb <= 18'bx;
            for (i = 0; i < DATA_WIDTH_A; i = i + 1) rows[wat[14:5]][wat[4:0] + i] <= dia[i];
        end
        if (OCEA) qa_r <= qa;
        if (OCEB) qb_r <= qb;
    end
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = REGMODE_A == "OUTREG" ? qa_r : qa;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = REGMODE_B == "OUTREG" ? qb_r : qb;
endmodule
`default_nettype wire
